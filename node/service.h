// The seam between the HTTP API / CLI front ends and whatever runs the model: a local
// engine in this process (LocalService) or the cluster pipeline (the coordinator).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "engine/speculative.h"
#include "engine/tokenizer.h"
#include "node/metrics.h"

namespace zen::node {

struct CompletionRequest {
  std::vector<int32_t> prompt;        // token ids, BOS included where the model wants it
  int max_tokens = 128;
  engine::SamplerParams sampling;
  std::vector<int32_t> stop_tokens;   // besides the tokenizer's end-of-generation ids
  std::vector<std::string> stop;      // stop strings (the text is cut before them)
};

struct TokenEvent {
  int32_t token = -1;        // -1 on the final event
  std::string text;          // newly completed text (UTF-8 safe; may be empty)
  bool done = false;         // last event of the request
  std::string finish_reason; // "stop", "length", "cancelled", "error" on the final event
  std::string error;         // when finish_reason == "error"
  int prompt_tokens = 0;     // on the final event
  int completion_tokens = 0; // on the final event
  engine::SpecStats speculative;  // on the final event: verify passes, drafted and accepted tokens
};

// Thrown by submit() for a request that can never run (prompt too long, bad params):
// the HTTP layer maps it to 400.
class RequestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by submit() when the request is valid but the service has no room for it now (every
// sequence slot busy and the wait queue full, or shutting down): the HTTP layer maps it to 503.
class OverloadedError : public RequestError {
 public:
  using RequestError::RequestError;
};

class InferenceService {
 public:
  virtual ~InferenceService() = default;
  virtual const engine::Tokenizer& tokenizer() const = 0;
  virtual std::string model_name() const = 0;
  virtual std::string chat_template() const = 0;  // detected (or configured) template name
  virtual int n_ctx() const = 0;
  // Starts a generation. on_event runs on a service thread, once per token and once more
  // with done=true; returning false cancels the request (its KV cache is freed). Returns
  // the request id. Throws RequestError for an invalid request.
  virtual uint64_t submit(CompletionRequest req, std::function<bool(const TokenEvent&)> on_event) = 0;
  virtual void cancel(uint64_t request_id) = 0;
  // GET /cluster: nodes, addresses, slices, state, measured speeds (never secrets).
  virtual nlohmann::json cluster_info() const = 0;
  // GET /metrics: the service's samples (requests, tokens, queue, batches, KV cache, stage
  // busy time, hop latency, speculative decoding), Prometheus-style.
  virtual void write_metrics(MetricsText& out) const { (void)out; }
};

}  // namespace zen::node
