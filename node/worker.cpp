#include "node/worker.h"

#include <algorithm>
#include <fstream>
#include <future>
#include <thread>

#include "node/peer.h"

namespace zen::node {

namespace fs = std::filesystem;

Worker::Worker(NodeConfig cfg) : cfg_(std::move(cfg)) {
  creds_ = credentials(cfg_);
  caps_ = measure_capabilities(cfg_.threads, cfg_.memory_budget);
  log_line(cfg_.name, "capabilities: " + format_size(caps_.ram_bytes) + " usable, " + std::to_string(caps_.threads) +
                          " threads, " + caps_.kernel_isa + ", kernel " + std::to_string(caps_.kernel_gbps).substr(0, 5) +
                          " GB/s");
  if (!cfg_.model.empty()) {
    log_line(cfg_.name, "hashing " + cfg_.model.string() + " (cached after the first time)");
    local_digest_ = file_digest(cfg_.model, cfg_.data_dir);
  }
  fs::create_directories(cfg_.data_dir / "slices");
  ctl_ = std::thread([this] { control_loop(); });
}

std::shared_ptr<StageRunner> Worker::runner() {
  std::lock_guard<std::mutex> lk(mu_);
  return runner_;
}

void Worker::set_runner(std::shared_ptr<StageRunner> r) {
  std::shared_ptr<StageRunner> old;
  {
    std::lock_guard<std::mutex> lk(mu_);
    old = std::move(runner_);
    runner_ = std::move(r);
  }
  old.reset();  // joins the old stage's thread outside the lock (its output path takes mu_)
}

void Worker::control(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lk(ctl_mu_);
    ctl_q_.push_back(std::move(task));
  }
  ctl_cv_.notify_one();
}

void Worker::control_loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lk(ctl_mu_);
      ctl_cv_.wait(lk, [&] { return ctl_stop_ || !ctl_q_.empty(); });
      if (ctl_stop_) return;
      task = std::move(ctl_q_.front());
      ctl_q_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      log_line(cfg_.name, std::string("error: ") + e.what());
      send(transport::Error{transport::ErrorCode::internal, e.what()});
    }
  }
}

Worker::~Worker() {
  stop();
  if (discovery_) discovery_->stop();
  // Give the goodbye a moment, then no link handler may run while members go away.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  io_.context().stop();
  {
    std::lock_guard<std::mutex> lk(ctl_mu_);
    ctl_stop_ = true;
  }
  ctl_cv_.notify_all();
  ctl_.join();
  set_runner(nullptr);
}

void Worker::stop() {
  stop_ = true;
  std::shared_ptr<transport::Link> l;
  {
    std::lock_guard<std::mutex> lk(mu_);
    l = link_;
  }
  if (l) l->close("worker stopping");
}

void Worker::run() {
  if (cfg_.peers.empty() && !cfg_.discovery.enabled)
    throw ConfigError("worker: no coordinator address (peers) to dial and discovery is off");
  if (cfg_.discovery.enabled) {
    transport::DiscoveryOptions d;
    d.port = cfg_.discovery.port;
    d.targets = cfg_.discovery.targets;
    d.interval = cfg_.discovery.interval;
    d.log = [name = cfg_.name](std::string_view line) { log_line(name, std::string(line)); };
    discovery_ = std::make_unique<transport::DiscoveryService>(
        io_.context(), creds_.cluster_secret,
        transport::LocalAnnouncement{cfg_.name, transport::BeaconRole::worker, 0, creds_.identity.public_key}, d,
        [this](const transport::DiscoveredPeer& p) {
          if (p.role != transport::BeaconRole::coordinator) return;
          std::lock_guard<std::mutex> lk(mu_);
          HostPort hp{p.host, p.tcp_port};
          if (std::find(discovered_.begin(), discovered_.end(), hp) == discovered_.end()) {
            discovered_.push_back(hp);
            log_line(cfg_.name, "discovered coordinator " + p.name + " at " + hp.str());
          }
        });
  }
  auto backoff = std::chrono::milliseconds(200);
  while (!stop_) {
    std::vector<HostPort> targets = cfg_.peers;
    {
      std::lock_guard<std::mutex> lk(mu_);
      targets.insert(targets.end(), discovered_.begin(), discovered_.end());
    }
    for (const HostPort& hp : targets) {
      if (stop_) break;
      try {
        session(hp);
        backoff = std::chrono::milliseconds(200);
      } catch (const std::exception& e) {
        log_line(cfg_.name, "cannot reach coordinator " + hp.str() + ": " + e.what());
      }
    }
    if (stop_) break;
    std::this_thread::sleep_for(backoff);
    // A restarted coordinator is found within 2 s of listening again.
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

void Worker::session(const HostPort& coordinator) {
  serve(transport::connect_blocking(io_.context(), coordinator.host, coordinator.port, creds_, link_options(cfg_)));
  log_line(cfg_.name, "left coordinator " + coordinator.str());
}

void Worker::serve(std::shared_ptr<transport::Link> link) {
  std::promise<std::string> closed;
  auto closed_f = closed.get_future();
  {
    std::lock_guard<std::mutex> lk(mu_);
    link_ = link;
  }
  chunks_paused_ = false;  // a new link starts reading
  transport::LinkHandlers h;
  // Messages are handled on the io thread but only queue work (the stage has its own
  // thread); slice loading and file writes are short per message.
  h.on_message = [this](transport::Message&& m) {
    try {
      on_message(std::move(m));
    } catch (const std::exception& e) {
      log_line(cfg_.name, std::string("error: ") + e.what());
      send(transport::Error{transport::ErrorCode::internal, e.what()});
    }
  };
  auto done = std::make_shared<std::promise<std::string>>(std::move(closed));
  h.on_close = [done](const std::string& reason) { done->set_value(reason); };
  link->start(std::move(h));
  transport::Hello hello;
  hello.node_name = cfg_.name;
  hello.static_key = creds_.identity.public_key;
  hello.ram_bytes = caps_.ram_bytes;
  hello.threads = static_cast<uint32_t>(caps_.threads);
  hello.cpu_features = caps_.cpu_features;
  hello.kernel_gbps = caps_.kernel_gbps;
  if (local_digest_) hello.model_digest = *local_digest_;
  send(hello);
  log_line(cfg_.name, "joined coordinator " + link->peer_address());
  // A heartbeat per interval: the stage's load and KV cache for the coordinator's /metrics.
  double last_busy = 0;
  auto last_t = std::chrono::steady_clock::now();
  while (closed_f.wait_for(cfg_.heartbeat_interval) == std::future_status::timeout) {
    transport::Heartbeat hb;
    const auto now = std::chrono::steady_clock::now();
    hb.sent_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
    if (auto r = runner()) {
      const StageRunner::Stats st = r->stats();
      hb.kv_bytes = st.kv_bytes;
      hb.busy_seconds = st.busy_seconds;
      hb.passes = st.passes;
      const double wall = std::chrono::duration<double>(now - last_t).count();
      hb.busy = wall > 0 ? static_cast<float>(std::clamp((st.busy_seconds - last_busy) / wall, 0.0, 1.0)) : 0.0f;
      last_busy = st.busy_seconds;
    }
    last_t = now;
    send(hb);
  }
  const std::string reason = closed_f.get();
  log_line(cfg_.name, "link to coordinator closed: " + reason);
  std::lock_guard<std::mutex> lk(mu_);
  link_.reset();
}

std::shared_ptr<transport::Link> Worker::link() {
  std::lock_guard<std::mutex> lk(mu_);
  return link_;
}

void Worker::send(const transport::Message& m) {
  if (auto l = link()) send_wait(*l, m);
}

void Worker::chunk_done(size_t bytes) {
  if ((queued_chunk_bytes_ -= bytes) < kMaxQueuedChunkBytes / 4 && chunks_paused_.exchange(false))
    if (auto l = link()) l->pause_receive(false);
}

void Worker::on_message(transport::Message&& m) {
  // A plan or a slice transfer that fails here (a full disk, a corrupt transfer) answers the
  // plan with a StageReady that is not ok: the coordinator then plans around this node.
  if (auto* p = std::get_if<transport::Plan>(&m)) return control([this, plan = *p] { stage_task([&] { on_plan(plan); }); });
  if (auto* c = std::get_if<transport::WeightChunk>(&m)) {
    const size_t n = c->bytes.size();
    if ((queued_chunk_bytes_ += n) > kMaxQueuedChunkBytes && !chunks_paused_.exchange(true))
      if (auto l = link()) l->pause_receive(true);
    return control([this, n, chunk = std::move(*c)] {
      struct Done {
        Worker* w;
        size_t n;
        ~Done() { w->chunk_done(n); }
      } done{this, n};
      stage_task([&] { on_weight_chunk(chunk); });
    });
  }
  const auto stage = runner();
  if (auto* f = std::get_if<transport::Forward>(&m)) {
    if (!stage) throw std::runtime_error("forward before the stage is loaded");
    return stage->submit(std::move(*f));
  }
  if (auto* s = std::get_if<transport::StartRequest>(&m)) {
    if (stage) stage->start_request(*s);
    return;
  }
  if (auto* c = std::get_if<transport::ClearSequence>(&m)) {
    if (stage) stage->clear(*c);
    return;
  }
  if (auto* e = std::get_if<transport::Error>(&m)) log_line(cfg_.name, "coordinator says: " + e->message);
}

void Worker::stage_task(const std::function<void()>& task) {
  try {
    task();
  } catch (const std::exception& e) {
    log_line(cfg_.name, std::string("cannot load the stage: ") + e.what());
    want_digest_.clear();
    send(transport::StageReady{plan_id_, false, e.what()});
  }
}

void Worker::on_plan(const transport::Plan& p) {
  const transport::Stage* mine = nullptr;
  for (size_t i = 0; i < p.stages.size(); ++i)
    if (p.stages[i].node_name == cfg_.name) {
      mine = &p.stages[i];
      spec_ = {static_cast<int>(mine->first_layer), static_cast<int>(mine->end_layer), i == 0, i + 1 == p.stages.size()};
    }
  plan_id_ = p.plan_id;
  want_digest_.clear();  // a transfer for an older plan is dropped (its late chunks are ignored)
  n_stages_ = static_cast<int>(p.stages.size());
  model_digest_ = p.model_digest;
  if (!mine) {  // not part of this plan: drop any old stage, stay connected as a spare
    set_runner(nullptr);
    model_.reset();
    model_key_.clear();
    log_line(cfg_.name, "plan " + std::to_string(p.plan_id) + ": no stage for this node (spare)");
    send(transport::StageReady{p.plan_id, true, "spare"});
    return;
  }
  log_line(cfg_.name, "plan " + std::to_string(p.plan_id) + ": layers [" + std::to_string(spec_.first_layer) + ", " +
                          std::to_string(spec_.end_layer) + ")" + (spec_.embed ? " + embedding" : "") +
                          (spec_.head ? " + head" : ""));
  set_runner(nullptr);
  if (local_digest_ && *local_digest_ == p.model_digest) {
    load_stage(cfg_.model, true);
    return;
  }
  // The cached slice, if any, was named after the model digest and the slice.
  const fs::path cached = cfg_.data_dir / "slices" / slice_file_name(p.model_digest, spec_);
  if (fs::exists(cached)) {
    log_line(cfg_.name, "using cached slice " + cached.string());
    if (load_stage(cached, false, false)) return;
    // A damaged cache (a torn write, a disk error): drop it and fetch the slice again.
    std::error_code ec;
    fs::remove(cached, ec);
    log_line(cfg_.name, "cached slice removed; asking the coordinator for it");
  }
  send(transport::WeightRequest{{}, 0});  // ask for an offer
}

void Worker::on_weight_chunk(const transport::WeightChunk& c) {
  const fs::path final_path = cfg_.data_dir / "slices" / slice_file_name(model_digest_, spec_);
  if (c.bytes.empty() && c.offset == 0 && want_digest_ != c.slice_digest) {  // an offer
    want_digest_ = c.slice_digest;
    want_total_ = c.total;
    part_path_ = final_path.string() + ".part";
    uint64_t have = fs::exists(part_path_) ? fs::file_size(part_path_) : 0;
    if (have > c.total) {
      fs::remove(part_path_);
      have = 0;
    }
    last_progress_ = -1;
    log_line(cfg_.name, "receiving slice (" + format_size(c.total) + (have ? ", resuming at " + format_size(have) : "") + ")");
    send(transport::WeightRequest{c.slice_digest, have});
    return;
  }
  if (c.slice_digest != want_digest_) return;  // a stale transfer
  {
    std::ofstream out(part_path_, std::ios::binary | std::ios::app);
    // Not where the file ends: a chunk of an older request for the same slice (a re-plan asked
    // again) that the current stream also carries, or one ahead of what was asked for.
    if (static_cast<uint64_t>(out.tellp()) != c.offset) return;
    out.write(reinterpret_cast<const char*>(c.bytes.data()), static_cast<std::streamsize>(c.bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + part_path_.string() + " (disk full?)");
  }
  const uint64_t now = c.offset + c.bytes.size();
  const int pct = want_total_ ? static_cast<int>(100 * now / want_total_) : 100;
  if (pct / 10 != last_progress_ / 10) {
    last_progress_ = pct;
    log_line(cfg_.name, "slice transfer " + std::to_string(pct) + "%");
  }
  if (now < want_total_) return;
  if (file_digest(part_path_) != want_digest_) {
    fs::remove(part_path_);
    want_digest_.clear();
    throw std::runtime_error("received slice does not match its digest: discarded");
  }
  fs::rename(part_path_, final_path);
  want_digest_.clear();
  log_line(cfg_.name, "slice verified and cached as " + final_path.string());
  load_stage(final_path, false);
}

bool Worker::load_stage(const fs::path& file, bool whole_model, bool report_failure) {
  try {
    engine::SliceSpec s{spec_.first_layer, spec_.end_layer, spec_.embed, spec_.head};
    const std::string key = file.string() + " [" + std::to_string(s.first_layer) + ", " + std::to_string(s.end_layer) + ")" +
                            (s.embed ? " embed" : "") + (s.head ? " head" : "");
    const bool reuse = model_ && key == model_key_;
    if (!reuse) {
      model_.reset();  // unmap the old slice first
      model_key_.clear();
      model_ = engine::Model::load(file.string(), s);
      model_key_ = key;
    }
    const auto& model = model_;
    const StageOptions so = stage_options(cfg_, static_cast<int>(std::min<int64_t>(model->hp().n_ctx_train, 4096)), n_stages_);
    set_runner(std::make_shared<StageRunner>(model, so, [this](StageRunner::Output&& out) {
      std::visit([this](auto&& msg) { send(msg); }, out);
    }));
    log_line(cfg_.name, std::string("stage ready (") + (whole_model ? "own copy of the model" : "slice file") + ", " +
                            format_size(model->weight_bytes()) + " of weights " + (reuse ? "kept" : "mapped") + ")");
    send(transport::StageReady{plan_id_, true, ""});
    return true;
  } catch (const std::exception& e) {
    log_line(cfg_.name, std::string("cannot load the stage from ") + file.string() + ": " + e.what());
    model_.reset();
    model_key_.clear();
    if (report_failure) send(transport::StageReady{plan_id_, false, e.what()});
    return false;
  }
}

}  // namespace zen::node
