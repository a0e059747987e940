// partition/: the planner. Given what one transformer costs per layer, what each device can do and
// what the links between them cost, choose an order of devices and contiguous layer slices that fit
// in memory and minimise the predicted time per generated token.
//
// Pure functions over plain structs: no I/O, no engine/ or transport/ types. node/ turns GGUF facts
// and measured capabilities into these structs; sim/ reuses the same cost model for its simulation.
// Invalid input (empty model, malformed links matrix, a stage list with gaps, ...) throws
// std::invalid_argument with a message that says what is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace zen::partition {

// ---- inputs -------------------------------------------------------------------------------------

// One transformer layer.
struct LayerCost {
  uint64_t weight_bytes = 0;        // bytes of the layer's tensors; all are read once per decode step
  double flops_per_token = 0;       // FLOPs to push one token through the layer (~2 x parameters)
  uint64_t kv_bytes_per_token = 0;  // K+V cache bytes one token of context adds to this layer
};

struct ModelCost {
  std::vector<LayerCost> layers;        // [n_layer], in model order
  uint64_t embed_bytes = 0;             // token embedding table (first stage; only one row read per token)
  uint64_t head_bytes = 0;              // output norm + output projection (last stage; read every step)
  double head_flops_per_token = 0;      // FLOPs of the output projection for one token
  uint64_t hidden_bytes_per_token = 0;  // activation sent per token per hop (n_embd*4 for f32)
  bool tied_embeddings = false;         // head reuses the embedding tensor: counted once when one
                                        // stage holds both embed and head
};

struct Device {
  std::string name;
  uint64_t mem_bytes = 0;   // memory the node may use for its slice (its configured budget)
  double mem_bw_gbs = 0;    // measured weight-streaming bandwidth while decoding, GB/s (1e9 B/s)
  double flops = 0;         // measured compute rate for prompt processing, FLOP/s
  double overhead_s = 0;    // fixed cost per pipeline step (one batch through the stage)
};

// Between two devices, the same in both directions.
struct Link {
  double latency_s = 0;          // one-way
  double bandwidth_bytes_s = 0;  // payload bytes per second
  double loss = 0;               // packet loss probability in [0, 1)
};

struct Cluster {
  std::vector<Device> devices;
  // links[i][j] for every pair, symmetric; links[i][i] is ignored. An empty matrix means ideal links
  // (zero latency, unlimited bandwidth): all devices in one process.
  std::vector<std::vector<Link>> links;
  int coordinator = 0;  // owns tokenizer and API: tokens start there and sampled tokens return there
  // Hidden states between two stages on other devices go through the coordinator, as zen-node
  // routes them (each worker holds one link, to the coordinator): such a hop crosses two links.
  // false: stages send to each other directly.
  bool relay_via_coordinator = true;
};

struct PlanOptions {
  int prompt_tokens = 128;  // prompt length the time to first token is predicted for
  int gen_tokens = 128;     // generated tokens; decode reads KV at context prompt + gen/2 on average
  int n_streams = 4;        // concurrent requests for the aggregate throughput and the KV reserve
  uint64_t kv_tokens = 2048;  // context to reserve KV cache for, per stream
  int prefill_chunk = 512;    // the prompt goes through the pipeline in batches of at most this many
  std::optional<std::vector<int>> forced_layers_per_stage;  // layer count per stage, in order
  std::optional<std::vector<int>> forced_order;  // exactly these devices, in this pipeline order
  double mem_reserve_frac = 0.05;          // part of each device's memory never planned for
  uint64_t stage_overhead_bytes = 32ull << 20;  // scratch buffers and runtime per stage
  int exact_max_devices = 8;  // clusters up to this size are searched exhaustively (all orders and
                              // subsets); larger ones use a few candidate orders and local search
};

// ---- outputs ------------------------------------------------------------------------------------

struct Stage {
  int device = 0;
  int first_layer = 0;  // layers [first_layer, end_layer)
  int end_layer = 0;
  bool embed = false;   // first stage: looks up token embeddings
  bool head = false;    // last stage: output norm, head and sampling
  uint64_t mem_bytes = 0;            // weights + KV for kv_tokens x n_streams + stage overhead
  double decode_s = 0;               // one decode step for one sequence
  double prefill_s_per_token = 0;    // this stage's share of prompt processing, per prompt token
};

struct Prediction {
  double token_s = 0;         // one stream: time per generated token, stages + hops + token return
  double tokens_per_s = 0;    // 1 / token_s
  double ttft_s = 0;          // time to first token for prompt_tokens (prefill; its last position
                              // yields the first token) including the hops to and from the coordinator
  double prefill_tokens_per_s = 0;    // prompt_tokens / ttft_s
  double aggregate_tokens_per_s = 0;  // n_streams requests pipelined, waiting sequences batched
  int stream_batch = 1;       // sequences per batch in the best pipelined arrangement
  int prompt_tokens = 0;      // what ttft_s was predicted for
  int n_streams = 0;          // what aggregate_tokens_per_s was predicted for
  // The largest single term of token_s: the stage (its index) or the link (index of the stage that
  // sends; the coordinator's hop into the first stage counts as stage 0). Text is one of
  // "memory bandwidth on X", "compute on X", "step overhead on X", "link X->Y".
  int bottleneck_stage = 0;
  std::string bottleneck;
};

struct Plan {
  std::vector<Stage> stages;  // pipeline order
  Prediction prediction;
  bool fits = false;
  std::string why_not;  // when !fits: which device lacks how much (stages then show the closest try)
};

// ---- the planner ----------------------------------------------------------------------------------

// Best plan: minimises Prediction::token_s subject to memory, ties broken toward the smaller
// slowest-stage time (better aggregate throughput). Devices may be left out.
Plan plan(const ModelCost&, const Cluster&, const PlanOptions&);
// Baseline: every device (forced_order if given, else cluster order) gets an equal layer count.
Plan plan_even(const ModelCost&, const Cluster&, const PlanOptions&);
// Baseline: layers in proportion to each device's usable memory, cluster order.
Plan plan_memory_proportional(const ModelCost&, const Cluster&, const PlanOptions&);

// ---- the cost model (shared with sim/) ------------------------------------------------------------

// Every message carries framing, schema fields and an encryption tag on top of its payload.
inline constexpr uint64_t kMessageOverheadBytes = 64;
inline constexpr uint64_t kTokenBytes = 8;  // payload per token id sent to or from the coordinator
inline constexpr double kPacketPayloadBytes = 1448;  // TCP payload per packet, for the loss model

// Uses each stage's device and layer range; its other fields are recomputed, not trusted.
Prediction predict(const ModelCost&, const Cluster&, const std::vector<Stage>&, const PlanOptions&);

// Memory the planner may fill on a device: mem_bytes less the reserve.
uint64_t usable_bytes(const Device&, const PlanOptions&);
// A stage with its memory and times filled in; embed/head follow from the layer range.
Stage make_stage(const ModelCost&, const Cluster&, int device, int first_layer, int end_layer,
                 const PlanOptions&);
// Stages for devices[i] holding layers_per_stage[i] consecutive layers.
std::vector<Stage> make_stages(const ModelCost&, const Cluster&, const std::vector<int>& devices,
                               const std::vector<int>& layers_per_stage, const PlanOptions&);
// "" when every stage fits its device, else one clause per device that lacks memory.
std::string memory_shortfall(const Cluster&, const std::vector<Stage>&, const PlanOptions&);

// Time for one pipeline step of `batch` decoding sequences on a stage (the sequences share one pass
// over the weights): max(bytes / bandwidth, batch * flops / rate) + overhead.
double stage_step_s(const ModelCost&, const Cluster&, const Stage&, int batch, const PlanOptions&);
// Time for one prompt chunk of `tokens` tokens through a stage.
double stage_prefill_s(const ModelCost&, const Cluster&, const Stage&, int tokens, const PlanOptions&);
// The link between two devices (ideal when the matrix is empty or from == to).
Link link_between(const Cluster&, int from, int to);
// The links hidden states from one stage's device to the next one's cross, in order: the direct
// link, or two (from -> coordinator -> to) when the cluster relays; none when from == to.
std::vector<Link> hidden_route(const Cluster&, int from, int to);
// One message of `payload_bytes` over a link: latency + bytes / bandwidth + expected loss recovery.
double message_s(const Link&, uint64_t payload_bytes);
// Time the link is busy sending it (bandwidth only, no latency): what limits pipelined throughput.
double message_busy_s(const Link&, uint64_t payload_bytes);

// ---- reporting ----------------------------------------------------------------------------------

std::string format_bytes(uint64_t bytes);  // "12.34 GiB", "3.5 MiB", "812 B"
std::string describe(const Plan&, const Cluster&);  // human-readable table and prediction

}  // namespace zen::partition
