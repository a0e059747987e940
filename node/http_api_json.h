// The JSON side of the OpenAI-compatible API, free of sockets: request bodies are checked
// and turned into a CompletionRequest, results into the response and stream-chunk shapes.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"
#include "node/service.h"

namespace zen::node::api {

// A request the API refuses: HTTP status plus the OpenAI error "type" and "code".
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string type_, code_;
};

// {"error": {"message", "type", "code", "param": null}}
nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& code);
inline nlohmann::json error_body(const ApiError& e) { return error_body(e.what(), e.type(), e.code()); }
ApiError bad_request(const std::string& message, const std::string& code = "invalid_value");

enum class Endpoint { completions, chat };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::completions;
  CompletionRequest req;      // tokens, limits, sampling, stops: ready for submit()
  bool stream = false;
  bool include_usage = false; // stream_options.include_usage: a last chunk with usage only
};

// Parses and checks a request body (the raw bytes: malformed JSON is an ApiError too).
// `defaults` fill sampling fields the request leaves out; a request without "seed" gets
// `random_seed`. Tokenizes with the service's tokenizer (chat: renders the messages with the
// service's chat template and adds the template's stop tokens and strings).
ParsedRequest parse_request(std::string_view body, Endpoint endpoint, const InferenceService& svc,
                            const engine::SamplerParams& defaults, uint64_t random_seed);

// Response shapes. `id` is "cmpl-..." or "chatcmpl-...", `created` Unix seconds.
struct ResponseMeta {
  std::string id;
  int64_t created = 0;
  std::string model;
  Endpoint endpoint = Endpoint::completions;
};
// Token counts of a final event; with speculative decoding also its statistics ("speculative").
nlohmann::json usage_json(const TokenEvent& final_event);
// The whole (non-streamed) answer.
nlohmann::json completion_json(const ResponseMeta& m, const std::string& text, const TokenEvent& final_event);
// One stream chunk: text (chat: delta.content; with `role_only`, the opening delta with the
// role); finish_reason empty = null.
nlohmann::json chunk_json(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                          bool role_only = false);
// The usage-only chunk of stream_options.include_usage (empty choices).
nlohmann::json usage_chunk_json(const ResponseMeta& m, const TokenEvent& final_event);

// GET /v1/models
nlohmann::json models_json(const std::string& model, int64_t created);
nlohmann::json model_json(const std::string& model, int64_t created);

}  // namespace zen::node::api
