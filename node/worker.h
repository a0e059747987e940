// A worker node: dials the coordinator, reports its capabilities, loads the slice the plan
// gives it (from its own copy of the model, its cache, or by transfer from the coordinator),
// and runs its pipeline stage. Reconnects when the link drops.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "node/capabilities.h"
#include "node/config.h"
#include "node/slice_file.h"
#include "node/stage.h"
#include "transport/asio_link.h"
#include "transport/discovery.h"

namespace zen::node {

struct WorkerInfo;

class Worker {
 public:
  explicit Worker(NodeConfig cfg);
  ~Worker();
  // Runs until stop() (reconnecting as needed).
  void run();
  void stop();
  // One session over an already authenticated link (what run() does after dialling): says
  // Hello and serves the coordinator until the link closes. Tests hand in a FakeLink end.
  void serve(std::shared_ptr<transport::Link> link);

 private:
  void session(const HostPort& coordinator);
  void on_message(transport::Message&& m);
  void stage_task(const std::function<void()>& task);  // runs it; a failure answers the plan with StageReady not ok
  void on_plan(const transport::Plan& p);
  void on_weight_chunk(const transport::WeightChunk& c);
  // Maps the stage from `file` and starts its runner; false (with StageReady not ok sent, when
  // report_failure) if it cannot.
  bool load_stage(const std::filesystem::path& file, bool whole_model, bool report_failure = true);
  void send(const transport::Message& m);
  std::shared_ptr<transport::Link> link();

  NodeConfig cfg_;
  transport::Credentials creds_;
  transport::IoThread io_;
  std::shared_ptr<transport::Link> link_;
  std::unique_ptr<transport::DiscoveryService> discovery_;
  std::vector<HostPort> discovered_;  // coordinators heard on the LAN (guarded by mu_)
  std::mutex mu_;
  std::atomic<bool> stop_{false};
  Capabilities caps_;
  std::optional<Digest> local_digest_;  // of cfg_.model, when the worker has one
  // The plan in force and this node's part of it.
  uint64_t plan_id_ = 0;
  int n_stages_ = 1;  // stages in the current plan
  Digest model_digest_;
  SliceSpecFile spec_;
  std::shared_ptr<StageRunner> runner_;  // guarded by mu_; replaced only on the control thread
  // The slice mapped for the current stage (control thread): a new plan that gives this node
  // the same slice again gets a fresh runner (empty KV caches) over the same weights.
  std::shared_ptr<const engine::Model> model_;
  std::string model_key_;  // file and slice model_ was loaded with
  std::shared_ptr<StageRunner> runner();
  void set_runner(std::shared_ptr<StageRunner> r);
  // Plans and weight chunks are handled on a control thread of their own: loading a slice or
  // hashing a received file can take seconds, and the io thread must keep answering keepalives.
  void control(std::function<void()> task);
  void control_loop();
  std::mutex ctl_mu_;
  std::condition_variable ctl_cv_;
  std::deque<std::function<void()>> ctl_q_;
  bool ctl_stop_ = false;
  std::thread ctl_;
  // An incoming slice transfer. Chunks wait in the control queue; past kMaxQueuedChunkBytes
  // the link stops reading (TCP pushes back on the sender) until the control thread catches up.
  static constexpr size_t kMaxQueuedChunkBytes = size_t{8} << 20;
  std::atomic<size_t> queued_chunk_bytes_{0};
  std::atomic<bool> chunks_paused_{false};
  void chunk_done(size_t bytes);
  Digest want_digest_;
  uint64_t want_total_ = 0;
  std::filesystem::path part_path_;
  int last_progress_ = -1;
};

}  // namespace zen::node
