// Coordinator: planning, slice assignment, weight transfer, /cluster.
#include <fstream>
#include <thread>

#include "kernels/ops.h"
#include "node/coordinator.h"
#include "node/coordinator_internal.h"
#include "node/peer.h"

namespace zen::node {

namespace fs = std::filesystem;

namespace {

partition::Device make_device(const std::string& name, uint64_t budget, double gbps, int threads) {
  partition::Device d;
  d.name = name;
  d.mem_bytes = budget ? budget : available_memory_bytes();  // a node that reported nothing
  d.mem_bw_gbs = gbps > 0 ? gbps : 20.0;
  d.flops = 50e9 * std::max(1, threads);
  d.overhead_s = 50e-6;
  return d;
}

}  // namespace

void Coordinator::replan() {
  replan_pending_ = false;
  replan_due_.reset();
  dirty_ = true;
  // Devices: this node first, then the workers by name (a stable order for forced splits).
  partition::Cluster cluster;
  std::vector<std::string> names = {""};
  cluster.devices.push_back(make_device(cfg_.name, caps_.ram_bytes, caps_.kernel_gbps, caps_.threads));
  std::string excluded;  // nodes that could not load their stage, for the log and the unfit message
  for (auto& [name, n] : nodes_) {
    if (!n->load_error.empty()) {
      excluded += (excluded.empty() ? "" : "; ") + name + " could not load its stage: " + n->load_error;
      continue;
    }
    names.push_back(name);
    cluster.devices.push_back(make_device(name, n->hello.ram_bytes, n->hello.kernel_gbps, static_cast<int>(n->hello.threads)));
  }
  // Links: each worker's measured round trip (half of it one way) and probed bandwidth to this
  // node; unmeasured ones get LAN-like guesses. Worker-to-worker hops are relayed here.
  const size_t nd = cluster.devices.size();
  cluster.links.assign(nd, std::vector<partition::Link>(nd));
  for (size_t i = 1; i < nd; ++i) {
    const transport::LinkStats st = nodes_.at(names[i])->link->stats();
    partition::Link l;
    l.latency_s = st.rtt_us_smoothed > 0 ? st.rtt_us_smoothed / 2e6 : 0.5e-3;
    l.bandwidth_bytes_s = st.bandwidth_bytes_s > 0 ? st.bandwidth_bytes_s : 100e6;
    cluster.links[0][i] = cluster.links[i][0] = l;
  }
  for (size_t i = 1; i < nd; ++i)
    for (size_t j = 1; j < nd; ++j)
      if (i != j)
        cluster.links[i][j] = {cluster.links[0][i].latency_s + cluster.links[0][j].latency_s,
                               std::min(cluster.links[0][i].bandwidth_bytes_s, cluster.links[0][j].bandwidth_bytes_s), 0};
  partition::PlanOptions opts;
  opts.kv_tokens = static_cast<uint64_t>(n_ctx_);
  opts.n_streams = std::max(1, cfg_.limits.max_sequences);
  if (!cfg_.layer_split.empty()) {
    const size_t want = cfg_.layer_split.size();
    if (want <= cluster.devices.size()) {
      std::vector<int> order;
      for (size_t i = 0; i < want; ++i) order.push_back(static_cast<int>(i));
      opts.forced_order = order;
      opts.forced_layers_per_stage = cfg_.layer_split;
    } else if (!served_ && excluded.empty()) {  // starting: wait for the nodes the split names
      log_line(cfg_.name, "waiting for nodes: layer_split has " + std::to_string(want) + " stages, " +
                              std::to_string(cluster.devices.size()) + " nodes present");
      serving_ = false;
      return;
    } else {  // a node left: serve on the nodes present until the split is possible again
      log_line(cfg_.name, "layer_split has " + std::to_string(want) + " stages but " + std::to_string(cluster.devices.size()) +
                              " nodes are present: planning over them until enough return");
    }
  }
  partition::Plan p;
  try {
    p = partition::plan(cost_, cluster, opts);
  } catch (const std::exception& e) {
    return become_unfit(e.what() + (excluded.empty() ? "" : " (left out: " + excluded + ")"));
  }
  if (!p.fits) return become_unfit(p.why_not + (excluded.empty() ? "" : " (left out: " + excluded + ")"));
  unfit_.clear();
  if (serving_ && same_layout(p, names)) {  // nothing moves: tell the newcomers they are spares
    for (auto& [name, n] : nodes_)
      if (n->stage < 0 && !n->ready) send_wait(*n->link, plan_);
    return;
  }
  suspend_all();  // the requests in flight resume once every stage of the new plan is loaded
  apply_plan(p, names, cluster);
}

bool Coordinator::same_layout(const partition::Plan& p, const std::vector<std::string>& names) const {
  if (p.stages.size() != plan_.stages.size()) return false;
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const auto& a = p.stages[i];
    const auto& b = plan_.stages[i];
    const std::string& who = names[static_cast<size_t>(a.device)];
    if ((who.empty() ? cfg_.name : who) != b.node_name || static_cast<uint32_t>(a.first_layer) != b.first_layer ||
        static_cast<uint32_t>(a.end_layer) != b.end_layer)
      return false;
  }
  return true;
}

void Coordinator::apply_plan(const partition::Plan& p, const std::vector<std::string>& names,
                             const partition::Cluster& cluster) {
  serving_ = false;
  local_.reset();
  local_stage_ = -1;
  ready_count_ = 0;
  for (auto& [name, n] : nodes_) {
    n->ready = false;
    n->stage = -1;
  }
  prediction_ = p.prediction;
  const uint64_t prev_id = plan_.plan_id;
  plan_ = {};
  plan_.plan_id = prev_id + 1 + static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count() & 0xffff);
  plan_.model_digest = digest_;
  plan_.predicted_tokens_per_s = p.prediction.tokens_per_s;
  stage_nodes_.clear();
  for (size_t i = 0; i < p.stages.size(); ++i) {
    const auto& s = p.stages[i];
    const std::string& who = names[static_cast<size_t>(s.device)];
    stage_nodes_.push_back(who);
    transport::Stage ts;
    ts.node_name = who.empty() ? cfg_.name : who;
    ts.first_layer = static_cast<uint32_t>(s.first_layer);
    ts.end_layer = static_cast<uint32_t>(s.end_layer);
    plan_.stages.push_back(ts);
    if (who.empty()) {
      local_stage_ = static_cast<int>(i);
    } else {
      nodes_.at(who)->stage = static_cast<int>(i);
    }
  }
  log_line(cfg_.name, "plan " + std::to_string(plan_.plan_id) + ":\n" + partition::describe(p, cluster));
  planned_at_ = std::chrono::steady_clock::now();
  for (auto& [name, n] : nodes_) send_wait(*n->link, plan_);
  if (local_stage_ >= 0) {
    try {
      start_local_stage(p.stages[static_cast<size_t>(local_stage_)], static_cast<int>(p.stages.size()));
    } catch (const std::exception& e) {  // this node cannot map its own slice: nothing to plan around
      return become_unfit(std::string("this node cannot load its stage: ") + e.what());
    }
    ++ready_count_;
  } else {
    local_model_.reset();
  }
  if (ready_count_ == static_cast<int>(plan_.stages.size())) {
    serving_ = true;
    log_line(cfg_.name, "cluster serving: plan " + std::to_string(plan_.plan_id) + " on this node alone");
    start_waiting();
  }
}

void Coordinator::start_local_stage(const partition::Stage& s, int n_stages) {
  const engine::SliceSpec spec{s.first_layer, s.end_layer, local_stage_ == 0, local_stage_ + 1 == n_stages};
  const bool same = local_model_ && spec.first_layer == local_spec_.first_layer && spec.end_layer == local_spec_.end_layer &&
                    spec.embed == local_spec_.embed && spec.head == local_spec_.head;
  if (!same) {
    local_model_.reset();  // unmap the old slice before mapping the new one
    local_model_ = engine::Model::load(file_, spec);
    local_spec_ = spec;
  }
  const StageOptions so = stage_options(cfg_, n_ctx_, n_stages);
  // Outputs of a runner of an older plan are dropped (its requests resumed on the new one).
  const int stage = local_stage_;
  const uint64_t plan_id = plan_.plan_id;
  local_ = std::make_unique<StageRunner>(local_model_, so, [this, stage, plan_id](StageRunner::Output&& out) {
    auto o = std::make_shared<StageRunner::Output>(std::move(out));
    post([this, stage, plan_id, o] {
      if (plan_id == plan_.plan_id) on_stage_output(stage, std::move(*o));
    });
  });
}

void Coordinator::serve_weights(const std::string& node, const transport::WeightRequest& w) {
  Node& n = *nodes_.at(node);
  if (n.stage < 0) return;
  const auto& st = plan_.stages[static_cast<size_t>(n.stage)];
  SliceSpecFile spec{static_cast<int>(st.first_layer), static_cast<int>(st.end_layer), n.stage == 0,
                     n.stage + 1 == static_cast<int>(plan_.stages.size())};
  const fs::path dir = cfg_.data_dir / "slices-out";
  fs::create_directories(dir);
  const fs::path path = dir / slice_file_name(digest_, spec);
  if (!fs::exists(path)) {
    log_line(cfg_.name, "writing slice for " + node + ": " + path.filename().string());
    write_slice_file(*file_, spec, path);
  }
  const Digest d = file_digest(path, cfg_.data_dir);
  const uint64_t total = fs::file_size(path);
  if (w.slice_digest.empty()) {  // an offer
    send_wait(*n.link, transport::WeightChunk{d, 0, total, {}});
    return;
  }
  if (w.slice_digest != d || w.offset > total) {
    send_wait(*n.link, transport::Error{transport::ErrorCode::bad_request, "unknown slice or offset"});
    return;
  }
  // Stream from the resume point on a thread of its own (the loop keeps serving).
  std::weak_ptr<transport::Link> weak = n.link;
  senders_.emplace_back([weak, path, d, total, offset = w.offset] {
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    uint64_t at = offset;
    const size_t chunk = size_t{1} << 20;
    while (at < total) {
      auto link = weak.lock();
      if (!link) return;
      // A few chunks ahead of the socket at most: the slice is not copied into the send queue.
      while (link->is_open() && link->stats().queued_bytes > (uint64_t{4} << 20))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      transport::WeightChunk c{d, at, total, std::vector<std::byte>(std::min<uint64_t>(chunk, total - at))};
      in.read(reinterpret_cast<char*>(c.bytes.data()), static_cast<std::streamsize>(c.bytes.size()));
      if (!in || !send_wait(*link, c)) return;
      at += c.bytes.size();
    }
  });
}

void Coordinator::refresh_snapshot() {
  dirty_ = false;
  nlohmann::json j;
  j["model"] = {{"name", model_name()}, {"path", cfg_.model.string()}, {"digest", hex(digest_)},
                {"architecture", hp_.arch}, {"layers", hp_.n_layer}};
  j["serving"] = serving_;
  j["plan_id"] = plan_.plan_id;
  j["prediction"] = {{"tokens_per_s", prediction_.tokens_per_s}, {"ttft_s", prediction_.ttft_s},
                     {"aggregate_tokens_per_s", prediction_.aggregate_tokens_per_s}, {"bottleneck", prediction_.bottleneck}};
  nlohmann::json nodes = nlohmann::json::array();
  auto stage_json = [&](int i) -> nlohmann::json {
    if (i < 0) return nullptr;
    const auto& s = plan_.stages[static_cast<size_t>(i)];
    return {{"index", i}, {"first_layer", s.first_layer}, {"end_layer", s.end_layer}, {"embedding", i == 0},
            {"head", i + 1 == static_cast<int>(plan_.stages.size())}};
  };
  nodes.push_back({{"name", cfg_.name}, {"role", "coordinator"}, {"address", cfg_.listen.str()},
                   {"state", local_stage_ >= 0 ? "ready" : "spare"}, {"stage", stage_json(local_stage_)},
                   {"threads", cfg_.threads}, {"memory_budget", cfg_.memory_budget},
                   {"isa", kernels::isa_name(kernels::active_isa())}});
  int ready = local_stage_ >= 0 ? 1 : 0;
  for (const auto& [name, n] : nodes_) {
    const auto st = n->link->stats();
    nodes.push_back({{"name", name}, {"role", "worker"}, {"address", n->link->peer_address()},
                     {"public_key", transport::format_public_key(n->hello.static_key)},
                     {"state", !n->load_error.empty() ? "load failed" : n->stage < 0 ? "spare" : n->ready ? "ready" : "loading"},
                     {"stage", stage_json(n->stage)},
                     {"threads", n->hello.threads}, {"memory_budget", n->hello.ram_bytes},
                     {"cpu_features", n->hello.cpu_features}, {"kernel_gbps", n->hello.kernel_gbps},
                     {"has_model", n->hello.model_digest == digest_}, {"rtt_us", st.rtt_us_smoothed},
                     {"bandwidth_bytes_s", st.bandwidth_bytes_s},
                     {"bytes_sent", st.bytes_sent}, {"bytes_received", st.bytes_received}});
    if (!n->load_error.empty()) nodes.back()["load_error"] = n->load_error;
    if (n->stage >= 0 && n->ready) ++ready;
  }
  j["nodes"] = nodes;
  if (!unfit_.empty()) j["does_not_fit"] = unfit_;
  std::lock_guard<std::mutex> lk(mu_);
  snapshot_ = std::move(j);
  snapshot_serving_ = serving_;
  snapshot_unfit_ = unfit_;
  snapshot_ready_nodes_ = ready;
}

nlohmann::json Coordinator::cluster_info() const {
  std::lock_guard<std::mutex> lk(mu_);
  return snapshot_;
}

bool Coordinator::wait_ready(int nodes, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (snapshot_serving_ && snapshot_ready_nodes_ >= nodes) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace zen::node
