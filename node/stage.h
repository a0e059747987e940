// One pipeline stage on a node: a model slice with its KV caches, and on the last stage the
// head and the per-sequence samplers. Forward messages queue up; a thread drains the queue
// and runs every waiting row as ONE batch (one pass over the weights serves all the
// sequences waiting here), then hands each message's result on.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>

#include "engine/forward.h"
#include "engine/sampler.h"
#include "transport/messages.h"

namespace zen::node {

struct StageOptions {
  engine::ContextParams context;
  transport::DType activation = transport::DType::f32;  // hidden states handed to the next stage
  int max_batch_rows = 512;                             // rows per batch pass
  bool return_logits = false;  // last stage: send the logits with each sampled token (tests, debugging)
};

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

 private:
  struct SeqSampler {
    std::unique_ptr<engine::Sampler> sampler;
    std::vector<int32_t> history;
  };
  void loop();
  void run_batch(std::vector<transport::Forward>& batch);

  std::shared_ptr<const engine::Model> model_;
  StageOptions opts_;
  Emit emit_;
  std::unique_ptr<engine::Context> ctx_;
  std::map<uint32_t, SeqSampler> samplers_;  // stage thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::variant<transport::Forward, transport::StartRequest, transport::ClearSequence>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zen::node
