// One pipeline stage on a node: a model slice with its KV caches, and on the last stage the
// head and the per-sequence samplers. Forward messages queue up; a thread drains the queue
// and runs the waiting rows as one batch (one pass over the weights serves all the sequences
// waiting here), then hands each message's result on.
//
// A Forward whose first position is below what the stage holds for its sequence rolls the
// sequence back to that position first (speculative drafts that were rejected, or a request
// that is re-read). A Forward with draft tokens gets, from the last stage, the accepted drafts
// plus one token of its own (engine::verify), all in one SampledTokens.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include "engine/forward.h"
#include "engine/sampler.h"
#include "transport/messages.h"

namespace zen::node {

struct NodeConfig;

struct StageOptions {
  engine::ContextParams context;
  transport::DType activation = transport::DType::f32;  // hidden states handed to the next stage
  int max_batch_rows = 512;                             // rows per batch pass
  bool return_logits = false;  // last stage: send the logits with each sampled token (tests, debugging)
  // Stages in the pipeline. With several, a batch takes at most ceil(live sequences / n_stages)
  // sequences, so the streams split into groups that occupy different stages at the same time
  // (one big batch would visit the stages one after another, leaving all but one idle).
  int n_stages = 1;
  // While only some of a round's decode steps wait (StageRunner::gather), a batch waits for the
  // rest up to this fraction of the last batch's time, and at most gather_max_seconds.
  double gather_fraction = 0.05;
  double gather_max_seconds = 0.002;
  // Tests: the last stage writes the raw logits of every sampled row to
  // <dir>/r<request>-p<position>.f32 (little-endian float32).
  std::string dump_logits_dir;
};

// A node's stage options from its configuration (threads, sequences, batch rows, activation
// type on the wire, debugging) for a pipeline of n_stages stages; the same on the coordinator
// and on a worker.
StageOptions stage_options(const NodeConfig& cfg, int n_ctx, int n_stages);

class StageRunner {
 public:
  // A result: hidden states for the next stage, sampled tokens (last stage), or an error
  // for one request (transport::Error whose message starts with "request <id>: ").
  using Output = std::variant<transport::Forward, transport::SampledTokens, transport::Error>;
  using Emit = std::function<void(Output&&)>;  // called on the stage thread

  StageRunner(std::shared_ptr<const engine::Model> model, const StageOptions& opts, Emit emit);
  ~StageRunner();
  StageRunner(const StageRunner&) = delete;
  StageRunner& operator=(const StageRunner&) = delete;

  const engine::Model& model() const { return *model_; }
  bool is_last() const { return model_->has_head(); }

  // Any thread. Sampling parameters and token history for sequences of a request (last stage).
  void start_request(const transport::StartRequest& r);
  void submit(transport::Forward&& f);
  void clear(const transport::ClearSequence& c);
  // The most Forward messages one batch has taken so far (statistics, tests).
  size_t max_batch_seqs() const { return max_batch_msgs_.load(); }
  struct Stats {
    size_t kv_bytes = 0;      // KV cache memory held
    double busy_seconds = 0;  // time in forward passes
    uint64_t passes = 0;      // batches run
  };
  Stats stats() const;

 private:
  struct SeqSampler {
    std::unique_ptr<engine::Sampler> sampler;
    std::vector<int32_t> history;
  };
  void loop();
  void order_waiting();  // decode steps before prompt chunks, chunks round-robin (mu_ held)
  void gather(std::unique_lock<std::mutex>& lk);  // waits briefly for a round's other decode steps
  // A next-token step (one row, or a row with its drafts), not a prompt chunk.
  static bool is_decode_step(const transport::Forward& f);
  void run_batch(std::vector<transport::Forward>& batch);

  std::shared_ptr<const engine::Model> model_;
  StageOptions opts_;
  Emit emit_;
  std::unique_ptr<engine::Context> ctx_;
  std::map<uint32_t, SeqSampler> samplers_;  // stage thread only
  std::set<uint32_t> live_;                  // sequences with state here (stage thread only)
  double last_batch_seconds_ = 0;            // stage thread only
  uint64_t rounds_ = 0;                      // batches run (stage thread only)
  std::map<uint32_t, uint64_t> round_of_;    // sequence -> the batch of its last Forward with logits

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::variant<transport::Forward, transport::StartRequest, transport::ClearSequence>> queue_;
  bool stop_ = false;
  std::atomic<size_t> max_batch_msgs_{0};
  mutable std::mutex stats_mu_;
  Stats stats_;
  std::thread thread_;
};

}  // namespace zen::node
