// LocalService: the InferenceService that runs the whole model in this process, serving many
// requests at once with continuous batching.
//
// One engine Context holds a KV cache slot per live sequence (max_seqs). A scheduler thread
// runs steps: each step every sequence that is generating contributes its next token, and
// sequences still reading their prompt contribute a chunk of it (at most max_chunk tokens,
// within a step budget of max_batch_tokens rows), all as rows of ONE Context::forward batch.
// Requests join and leave at token boundaries; a long prompt is read in chunks interleaved with
// the other streams' tokens. Rows of different sequences do not interact in forward(), so a
// request's greedy output does not depend on what else runs with it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/forward.h"
#include "node/service.h"

namespace zen::node {

// Splits `budget` prompt rows of a step among the readers, each wanting want[i] (replaced by
// what it gets): equal shares, a reader that wants less leaving the rest to the others, the
// remainder one row each in order. Never more than wanted or than the budget.
void fair_shares(std::vector<size_t>& want, size_t budget);

struct LocalServiceOptions {
  int n_ctx = 0;               // positions per sequence (0: the model's training context)
  int n_threads = 1;           // compute threads of the Context
  int max_seqs = 4;            // sequences generating at once (KV cache slots)
  int max_chunk = 256;         // prompt tokens one sequence reads per step
  int max_batch_tokens = 512;  // rows per step over all sequences
  size_t max_queue = 64;       // requests waiting for a slot; beyond that submit() is refused
  std::string chat_template;   // empty: detected from the model (an unrecognised template is an error)
  std::string model_name;      // empty: general.name, else the file name
  // Speculative decoding: "off", "lookup" (drafts copied from the context's earlier n-grams)
  // or "draft" (a small model with the same vocabulary, draft_model). k adapts per sequence
  // to its acceptance rate, up to spec_k_max.
  std::string speculative = "off";
  std::string draft_model;
  int spec_k_max = 8;
};

class LocalService final : public InferenceService {
 public:
  // Loads the model (whole, embedding to head) from a GGUF file.
  static std::unique_ptr<LocalService> open(const std::string& path, const LocalServiceOptions& opt);
  LocalService(std::shared_ptr<const engine::Model> model, const LocalServiceOptions& opt,
               std::string default_name = "");
  // Stops the scheduler; requests still queued or running get a final "cancelled" event.
  ~LocalService() override;

  const engine::Tokenizer& tokenizer() const override { return *tok_; }
  std::string model_name() const override { return name_; }
  std::string chat_template() const override { return template_; }
  int n_ctx() const override { return n_ctx_; }
  uint64_t submit(CompletionRequest req, std::function<bool(const TokenEvent&)> on_event) override;
  // Queues several requests at once (all or none): the scheduler admits them in the same step,
  // however the submitting thread is scheduled.
  std::vector<uint64_t> submit_all(std::vector<std::pair<CompletionRequest, std::function<bool(const TokenEvent&)>>> requests);
  void cancel(uint64_t request_id) override;
  nlohmann::json cluster_info() const override;
  void write_metrics(MetricsText& out) const override;

  struct Stats {
    int active = 0;            // sequences holding a slot
    int queued = 0;            // requests waiting for a slot
    size_t kv_bytes = 0;       // KV cache memory held (after the last step)
    int free_slots = 0;        // sequence slots free for the queue
    uint64_t steps = 0;        // forward batches run
    int max_step_rows = 0;     // the largest batch so far
    int max_step_seqs = 0;     // the most sequences in one batch so far
    uint64_t requests_done = 0;
    uint64_t tokens_generated = 0;
    uint64_t prompt_tokens = 0;  // prompt tokens read
    uint64_t rows_total = 0;     // rows over all steps (rows_total / steps: the mean batch)
    double busy_seconds = 0;     // time spent in forward passes
    engine::SpecStats speculative;
  };
  Stats stats() const;

 private:
  struct Request;
  void loop();
  void step(std::vector<std::unique_ptr<Request>>& active);
  // Feeds a sampled token to the request; returns false when the request has ended.
  void validate(const CompletionRequest& req) const;  // throws RequestError
  bool on_token(Request& r, int32_t token);
  void finish(Request& r, const std::string& reason, const std::string& error = "");
  bool emit(Request& r, TokenEvent ev);

  std::shared_ptr<const engine::Model> model_;
  std::unique_ptr<engine::Tokenizer> tok_;
  LocalServiceOptions opt_;
  std::string name_, template_;
  int n_ctx_ = 0;
  std::unique_ptr<engine::Context> ctx_;  // used by the scheduler thread only
  std::unique_ptr<engine::DraftModel> draft_;  // speculative == "draft"
  double spec_cost_ = 0.2;  // a verify row's cost relative to a one-row pass (+ drafting): the prior
  std::unique_ptr<engine::PassCost> pass_cost_;  // measured pass costs (scheduler thread only)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Request>> queue_;  // waiting for a slot
  std::unordered_set<uint64_t> cancels_;        // cancel() ids not yet handled
  std::vector<int32_t> free_slots_;
  int n_active_ = 0;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  Stats stats_;
  std::thread thread_;
};

}  // namespace zen::node
