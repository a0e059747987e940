// The messages zen nodes exchange, as plain C++ structs. Cap'n Proto stays
// inside transport/: encode()/decode() (codec.h) map these to and from the
// wire schema in transport/schema/zen.capnp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "transport/tensor.h"

namespace zen::transport {

// Bumped on every incompatible wire change (handshake or schema). A peer with a
// different version is refused with a clear error, never half-understood.
inline constexpr uint16_t kProtocolVersion = 1;

using PublicKey = std::array<uint8_t, 32>;  // X25519 public key

// First message on every link: who I am and what I can do (planner input).
struct Hello {
  std::string node_name;
  PublicKey static_key{};          // must match the key proven in the handshake
  uint64_t ram_bytes = 0;
  uint32_t threads = 0;
  std::string cpu_features;        // e.g. "avx2 fma f16c"
  double kernel_gbps = 0;          // measured kernel bandwidth, GB/s
  std::vector<uint8_t> model_digest;  // empty: no model file on this node
  std::string listen_address;      // "host:port" other nodes may dial; empty if none
  bool operator==(const Hello&) const = default;
};

struct Stage {
  std::string node_name;
  uint32_t first_layer = 0;
  uint32_t end_layer = 0;  // exclusive
  std::string address;     // "host:port" to dial this stage
  std::optional<PublicKey> node_key;  // pin when dialling
  bool operator==(const Stage&) const = default;
};

// The coordinator's plan: contiguous layer slices in pipeline order.
struct Plan {
  uint64_t plan_id = 0;
  std::vector<uint8_t> model_digest;
  DType activation_dtype = DType::f32;
  std::vector<Stage> stages;        // pipeline order
  double predicted_tokens_per_s = 0;  // the prediction the plan was chosen on
  bool operator==(const Plan&) const = default;
};

struct SamplingParams {
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  uint64_t seed = 0;
  bool operator==(const SamplingParams&) const = default;
};

// Sent to the last stage before the first Forward of a request, and again when a request
// resumes on a new plan (its history then holds the tokens sampled so far too).
struct StartRequest {
  uint64_t request_id = 0;
  std::vector<uint32_t> seq_ids;
  SamplingParams sampling;
  std::vector<int32_t> history;  // tokens so far (prompt + sampled): input of the repetition penalty
  uint32_t tokens_sampled = 0;   // tokens sampled before a resume: the sampler's RNG skips their draws
  bool operator==(const StartRequest&) const = default;
};

// One batch for a pipeline stage: row i is (seq_ids[i], positions[i]).
struct Forward {
  uint64_t request_id = 0;
  std::vector<uint32_t> seq_ids;   // [n_rows]
  std::vector<int32_t> positions;  // [n_rows]
  std::vector<int32_t> tokens;     // [n_rows] for the first stage, else empty
  TensorBuf hidden;                // [n_rows, n_embd] for later stages, else empty
  bool want_logits = false;
  bool last_chunk = false;         // last chunk of the prompt
  // Speculative decoding: the drafted tokens, fed as the last draft.size() rows. Every stage
  // carries them on; the last stage checks them against its logits and answers with the
  // accepted ones plus one token of its own.
  std::vector<int32_t> draft;
  bool operator==(const Forward&) const = default;
};

struct SampledTokens {
  uint64_t request_id = 0;
  std::vector<uint32_t> seq_ids;  // [n]
  std::vector<int32_t> tokens;    // [n]
  bool has_logits = false;
  TensorBuf logits;               // [n, n_vocab] when has_logits
  bool operator==(const SampledTokens&) const = default;
};

struct ClearSequence {
  uint64_t request_id = 0;
  std::vector<uint32_t> seq_ids;
  bool operator==(const ClearSequence&) const = default;
};

struct WeightRequest {
  std::vector<uint8_t> slice_digest;
  uint64_t offset = 0;  // resume point in bytes
  bool operator==(const WeightRequest&) const = default;
};

struct WeightChunk {
  std::vector<uint8_t> slice_digest;
  uint64_t offset = 0;
  uint64_t total = 0;
  std::vector<std::byte> bytes;
  bool operator==(const WeightChunk&) const = default;
};

// A worker's periodic report on its stage (every heartbeat.interval).
struct Heartbeat {
  uint64_t sent_ns = 0;  // sender's steady clock
  float busy = 0;        // 0..1 since the last heartbeat
  uint64_t kv_bytes = 0;      // KV cache memory held by the stage
  double busy_seconds = 0;    // compute time so far
  uint64_t passes = 0;        // batches so far
  bool operator==(const Heartbeat&) const = default;
};

// Ping/Pong are answered by the link itself (keepalive and RTT); they are not
// delivered to on_message.
struct Ping {
  uint64_t nonce = 0;
  uint64_t sent_ns = 0;
  std::vector<std::byte> padding;  // a bandwidth probe's payload (the Pong does not echo it)
  bool operator==(const Ping&) const = default;
};

struct Pong {
  uint64_t nonce = 0;
  uint64_t ping_sent_ns = 0;
  uint64_t sent_ns = 0;
  bool operator==(const Pong&) const = default;
};

enum class ErrorCode : uint32_t {
  unknown = 0,
  bad_request = 1,
  unsupported = 2,
  overloaded = 3,
  internal = 4,
  model_mismatch = 5,
};

struct Error {
  ErrorCode code = ErrorCode::unknown;
  std::string message;
  bool operator==(const Error&) const = default;
};

// Last message of an orderly close; sent in the stream's final frame.
struct Goodbye {
  std::string reason;
  bool operator==(const Goodbye&) const = default;
};

// A stage node's answer to a Plan: its slice is loaded (ok) or cannot be (message says why).
struct StageReady {
  uint64_t plan_id = 0;
  bool ok = false;
  std::string message;
  bool operator==(const StageReady&) const = default;
};

using Message = std::variant<Hello, Plan, StartRequest, Forward, SampledTokens, ClearSequence, WeightRequest,
                             WeightChunk, Heartbeat, Ping, Pong, Error, Goodbye, StageReady>;

// "hello", "forward", ... for logs.
std::string_view message_name(const Message& m);

}  // namespace zen::transport
