#include "node/coordinator.h"
#include "node/coordinator_internal.h"

#include <fstream>

#include "engine/chat_template.h"
#include "kernels/ops.h"
#include "node/model_cost.h"
#include "node/peer.h"

namespace zen::node {

namespace fs = std::filesystem;
using transport::Message;

Coordinator::Coordinator(NodeConfig cfg) : cfg_(std::move(cfg)) {
  if (cfg_.model.empty()) throw ConfigError("the coordinator needs a model (model = \"path.gguf\")");
  file_ = engine::GgufModelFile::open(cfg_.model.string());
  hp_ = engine::Hparams::from_gguf(file_->gguf());
  tok_ = engine::Tokenizer::from_gguf(file_->gguf());
  chat_template_ = engine::detect_chat_template(file_->gguf());
  n_ctx_ = static_cast<int>(std::min<int64_t>(hp_.n_ctx_train, 4096));
  const int act_bytes = cfg_.activation_type == ActivationType::f32 ? 4 : 2;
  cost_ = model_cost(file_->gguf(), hp_, act_bytes);
  fs::create_directories(cfg_.data_dir);
  log_line(cfg_.name, "hashing " + cfg_.model.string() + " (cached after the first time)");
  digest_ = file_digest(cfg_.model, cfg_.data_dir);
  creds_ = credentials(cfg_);
  caps_ = measure_capabilities(cfg_.threads, cfg_.memory_budget);
  log_line(cfg_.name, "coordinator for " + hp_.name + " (" + hp_.arch + ", " + std::to_string(hp_.n_layer) +
                          " layers), public key " + transport::format_public_key(creds_.identity.public_key));
  asio::ip::tcp::endpoint ep(asio::ip::make_address(cfg_.listen.host), cfg_.listen.port);
  listener_ = std::make_unique<transport::Listener>(
      io_.context(), ep, creds_, link_options(cfg_),
      [this](std::shared_ptr<transport::Link> link) { post([this, link] { on_link(link); }); },
      [this](const std::string& peer, const std::string& reason) { log_line(cfg_.name, "refused " + peer + ": " + reason); });
  log_line(cfg_.name, "listening for nodes on " + cfg_.listen.host + ":" + std::to_string(listener_->port()));
  if (cfg_.discovery.enabled) {  // workers without a configured peer find us by these beacons
    transport::DiscoveryOptions d;
    d.port = cfg_.discovery.port;
    d.targets = cfg_.discovery.targets;
    d.interval = cfg_.discovery.interval;
    d.log = [name = cfg_.name](std::string_view line) { log_line(name, std::string(line)); };
    discovery_ = std::make_unique<transport::DiscoveryService>(
        io_.context(), creds_.cluster_secret,
        transport::LocalAnnouncement{cfg_.name, transport::BeaconRole::coordinator, listener_->port(),
                                     creds_.identity.public_key},
        d, [](const transport::DiscoveredPeer&) {});
    log_line(cfg_.name, "announcing on UDP port " + std::to_string(discovery_->port()));
  }
  loop_ = std::thread([this] { loop(); });
  post([this] { replan(); });
}

Coordinator::~Coordinator() {
  if (discovery_) discovery_->stop();
  listener_->close();
  post([this] {
    replan_pending_ = false;
    replan_due_.reset();
    std::vector<uint64_t> ids;
    for (auto& [id, r] : requests_) ids.push_back(id);
    for (uint64_t id : ids) finish(*requests_.at(id), "cancelled");
    for (auto& [name, n] : nodes_) n->link->close("coordinator stopping");
    local_.reset();
  });
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  loop_.join();
  for (auto& t : senders_) t.join();
  // No link handler may run once the members it touches start going away.
  io_.context().stop();
}

uint16_t Coordinator::port() const { return listener_->port(); }
std::string Coordinator::model_name() const { return hp_.name.empty() ? cfg_.model.filename().string() : hp_.name; }

void Coordinator::post(Event e) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_one();
}

void Coordinator::loop() {
  for (;;) {
    Event e;
    bool replan_now = false;
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto ready = [&] { return stop_ || !events_.empty(); };
      if (replan_due_) replan_now = !cv_.wait_until(lk, *replan_due_, ready);  // replan_due_: loop thread only
      else cv_.wait(lk, ready);
      if (!replan_now) {
        if (events_.empty()) return;  // stop_ and drained
        e = std::move(events_.front());
        events_.pop_front();
      }
    }
    try {
      if (replan_now) {
        log_line(cfg_.name, "improving the plan with " + std::to_string(requests_.size()) +
                                " requests in flight (they resume on the new plan)");
        replan();
      } else {
        e();
      }
      if (dirty_) refresh_snapshot();
    } catch (const std::exception& ex) {
      log_line(cfg_.name, std::string("error: ") + ex.what());
    }
  }
}

void Coordinator::on_link(std::shared_ptr<transport::Link> link) {
  // The node's name is known after its Hello; until then messages carry the address.
  auto name = std::make_shared<std::string>();
  std::weak_ptr<transport::Link> weak = link;
  transport::LinkHandlers h;
  h.on_message = [this, name, weak](Message&& m) {
    auto msg = std::make_shared<Message>(std::move(m));
    post([this, name, weak, msg] {
      if (auto* hello = std::get_if<transport::Hello>(msg.get())) {
        if (auto l = weak.lock()) on_hello(l, *hello, *name);
        return;
      }
      if (name->empty()) return;  // nothing before Hello
      auto it = nodes_.find(*name);
      if (it == nodes_.end() || it->second->link != weak.lock()) return;  // a replaced connection
      on_message(*name, std::move(*msg));
    });
  };
  h.on_close = [this, name, weak](const std::string& reason) {
    post([this, name, weak, reason] {
      auto it = nodes_.find(*name);
      if (name->empty() || it == nodes_.end() || it->second->link != weak.lock()) return;
      on_node_gone(*name, reason);
    });
  };
  link->start(std::move(h));
}

void Coordinator::on_hello(const std::shared_ptr<transport::Link>& l, const transport::Hello& hello, std::string& name) {
  if (hello.static_key != l->peer_key()) {
    l->close("hello key does not match the handshake key");
    return;
  }
  name = hello.node_name.empty() ? l->peer_address() : hello.node_name;
  bool was_stage = false;  // the node reconnected before its old link was declared gone
  if (auto it = nodes_.find(name); it != nodes_.end() && it->second->link != l) {
    was_stage = it->second->stage >= 0;
    it->second->link->close("replaced by a new connection of the same node");
  }
  auto n = std::make_unique<Node>();
  n->name = name;
  n->link = l;
  n->hello = hello;
  nodes_[name] = std::move(n);
  dirty_ = true;
  log_line(cfg_.name, "node " + name + " joined from " + l->peer_address() + " (" + hello.cpu_features +
                          (hello.model_digest == digest_ ? ", has the model" : "") + ")");
  if (was_stage) {  // its stage (and the KV caches on it) is gone: as if it had left and come back
    if (!lost_at_) lost_at_ = std::chrono::steady_clock::now();
    serving_ = false;
    replan();
    return;
  }
  on_node_joined(name);
}

void Coordinator::on_message(const std::string& node, Message&& m) {
  Node& n = *nodes_.at(node);
  // Outputs count only from a node that has loaded its stage of the current plan: what it sent
  // before its StageReady belongs to an older plan (those requests resume on this one).
  const bool current = n.stage >= 0 && n.ready;
  if (auto* r = std::get_if<transport::StageReady>(&m)) {
    on_stage_ready(n, *r);
  } else if (auto* f = std::get_if<transport::Forward>(&m)) {
    if (current) on_stage_output(n.stage, std::move(*f));
  } else if (auto* s = std::get_if<transport::SampledTokens>(&m)) {
    if (current) on_stage_output(n.stage, std::move(*s));
  } else if (auto* e = std::get_if<transport::Error>(&m)) {
    if (current) on_stage_output(n.stage, std::move(*e));
    else log_line(cfg_.name, "node " + node + " (no stage of the current plan): " + e->message);
  } else if (auto* w = std::get_if<transport::WeightRequest>(&m)) {
    serve_weights(node, *w);
  }
}

void Coordinator::on_stage_ready(Node& n, const transport::StageReady& r) {
  if (r.plan_id != plan_.plan_id) return;
  if (!r.ok) {
    log_line(cfg_.name, "node " + n.name + " cannot take its stage: " + r.message);
    return;
  }
  if (!n.ready && n.stage >= 0) ++ready_count_;
  n.ready = true;
  dirty_ = true;
  if (!serving_ && !plan_.stages.empty() && ready_count_ == static_cast<int>(plan_.stages.size())) {
    serving_ = true;
    log_line(cfg_.name, "cluster serving: plan " + std::to_string(plan_.plan_id) + " with " +
                            std::to_string(plan_.stages.size()) + " stages");
    start_waiting();
  }
}

}  // namespace zen::node
