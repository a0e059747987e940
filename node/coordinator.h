// The coordinator: owns the model file, the tokenizer and the plan; admits workers, plans
// contiguous slices over itself and them, and drives every request through the pipeline.
// It implements InferenceService, so the HTTP API and the CLI talk to it like to a local
// engine.
//
// Topology: every worker holds one link, to the coordinator; hidden states of stage i reach
// stage i+1 through the coordinator (a star). That keeps a single authenticated link per
// worker and one place that sees every request's state (re-planning, cancellation). The
// extra hop costs one message time per stage per token.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/model.h"
#include "engine/speculative.h"
#include "engine/tokenizer.h"
#include "node/capabilities.h"
#include "node/config.h"
#include "node/service.h"
#include "node/slice_file.h"
#include "node/stage.h"
#include "partition/partition.h"
#include "transport/asio_link.h"
#include "transport/discovery.h"

namespace zen::node {

class Coordinator : public InferenceService {
 public:
  explicit Coordinator(NodeConfig cfg);
  ~Coordinator() override;

  // InferenceService
  const engine::Tokenizer& tokenizer() const override { return *tok_; }
  std::string model_name() const override;
  std::string chat_template() const override { return chat_template_; }
  int n_ctx() const override { return n_ctx_; }
  uint64_t submit(CompletionRequest req, std::function<bool(const TokenEvent&)> on_event) override;
  void cancel(uint64_t request_id) override;
  nlohmann::json cluster_info() const override;
  void write_metrics(MetricsText& out) const override;

  uint16_t port() const;  // the peer listener's port
  // Blocks until the cluster serves with at least `nodes` stage nodes (coordinator
  // included) or the timeout passes; returns whether it does.
  bool wait_ready(int nodes, std::chrono::milliseconds timeout);
  // Admits an already authenticated link as if the listener had accepted it (tests and the
  // simulator hand in transport::FakeLink ends here).
  void add_link(std::shared_ptr<transport::Link> link) { post([this, link] { on_link(link); }); }

 private:
  struct Node;
  struct Request;
  using Event = std::function<void()>;

  void post(Event e);
  void loop();
  void on_link(std::shared_ptr<transport::Link> link);
  void on_hello(const std::shared_ptr<transport::Link>& link, const transport::Hello& hello, std::string& name);
  void on_message(const std::string& node, transport::Message&& m);
  void on_stage_ready(Node& n, const transport::StageReady& r);
  // Recovery (coordinator_recovery.cpp).
  void on_node_gone(const std::string& node, const std::string& reason);
  void on_node_joined(const std::string& node);
  void suspend_all();  // every request in flight waits for the next plan, then resumes
  void fail_all(const std::string& error);
  void become_unfit(const std::string& why);
  void start_waiting();
  void admit();  // starts waiting requests while fewer than limits.max_sequences run
  // Planning (coordinator_plan.cpp).
  void replan();
  bool same_layout(const partition::Plan& p, const std::vector<std::string>& names) const;
  void apply_plan(const partition::Plan& p, const std::vector<std::string>& names, const partition::Cluster& cluster);
  void start_local_stage(const partition::Stage& s, int n_stages);
  void on_stage_output(int stage, StageRunner::Output&& out);
  void on_tokens(uint64_t id, const std::vector<int32_t>& tokens);
  // Takes one sampled token (fed next at feed_pos); false when the request ended (r is gone).
  bool take_token(Request& r, int32_t token, int32_t feed_pos);
  void send_next(Request& r);  // the last token, with drafts when speculating
  void check_stalls();         // limits.step_timeout: re-read or fail requests that lost a message
  void to_stage(int stage, transport::Message m);
  void start(Request& r);
  void finish(Request& r, const std::string& reason, const std::string& error = {});
  void serve_weights(const std::string& node, const transport::WeightRequest& w);
  void refresh_snapshot();

  NodeConfig cfg_;
  std::shared_ptr<engine::GgufModelFile> file_;
  engine::Hparams hp_;
  std::unique_ptr<engine::Tokenizer> tok_;
  std::string chat_template_;
  Digest digest_;
  int n_ctx_ = 0;
  partition::ModelCost cost_;

  Capabilities caps_;
  transport::Credentials creds_;
  transport::IoThread io_;
  std::unique_ptr<transport::Listener> listener_;
  std::unique_ptr<transport::DiscoveryService> discovery_;  // LAN beacons (when enabled)

  // Event-loop state (loop thread only).
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::map<uint64_t, std::unique_ptr<Request>> requests_;
  std::deque<uint64_t> waiting_;  // submitted while the cluster was not serving
  transport::Plan plan_;
  std::vector<std::string> stage_nodes_;   // node name per stage ("" = this node)
  std::unique_ptr<StageRunner> local_;     // this node's stage, if any
  int local_stage_ = -1;
  bool serving_ = false;
  int ready_count_ = 0;
  partition::Prediction prediction_;
  bool dirty_ = true;  // membership or plan changed: refresh the /cluster snapshot
  // A node joined while requests ran: the plan is improved when they finish or at
  // replan_due_, whichever comes first (then the requests in flight resume on the new plan).
  bool replan_pending_ = false;
  std::optional<std::chrono::steady_clock::time_point> replan_due_;
  bool served_ = false;   // has served at least once (layer_split then yields to the nodes left)
  std::string unfit_;     // why the model does not fit the nodes present; "" when it does
  std::optional<std::chrono::steady_clock::time_point> lost_at_;  // a stage node left; not yet recovered
  std::chrono::steady_clock::time_point planned_at_;              // the current plan was sent
  std::shared_ptr<const engine::Model> local_model_;  // this node's slice, kept while the plan gives it the same one
  engine::SliceSpec local_spec_{};
  std::unique_ptr<engine::DraftModel> draft_;  // speculative.mode = draft
  double spec_cost_ = 0.2;                     // a draft's cost relative to a pass (verify row + drafting): the prior
  std::unique_ptr<engine::PassCost> pass_cost_;  // measured costs of a lone request's passes, through the pipeline
  std::map<std::pair<uint64_t, int>, std::chrono::steady_clock::time_point> sent_at_;
  std::chrono::steady_clock::time_point next_stall_check_{};  // (request, stage) -> Forward sent

  // GET /metrics counters (guarded by mu_).
  struct Counters {
    uint64_t requests_done = 0, prompt_tokens = 0, generated = 0;
    engine::SpecStats spec;
    std::vector<double> stage_seconds;   // per stage: Forward sent -> its output back (compute + hops)
    std::vector<uint64_t> stage_passes;
    int running = 0, waiting = 0;
    std::map<std::string, transport::Heartbeat> stage_reports;  // per node: its last heartbeat (this node's stage too)
  };
  Counters counters_;

  mutable std::mutex mu_;  // guards the event queue and the snapshot below
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool stop_ = false;
  nlohmann::json snapshot_;  // cluster_info, refreshed by the loop
  int snapshot_ready_nodes_ = 0;
  bool snapshot_serving_ = false;
  std::string snapshot_unfit_;
  std::atomic<uint64_t> next_id_{1};
  std::thread loop_;
  std::vector<std::thread> senders_;  // weight transfers
};

}  // namespace zen::node
