// Model and device presets for topology files. Model shapes are the published architecture
// hyperparameters (config.json of each release); bytes per weight follow from the GGUF block sizes.
#include <cmath>

#include "sim/topology.h"

namespace zen::sim {

namespace {

struct ArchShape {
  const char* name;
  int n_layer;
  int n_embd;
  int n_ff;
  int n_head;
  int n_head_kv;
  int head_dim;
  int n_vocab;
  bool tied_embeddings;
};

// config.json of each model: num_hidden_layers, hidden_size, intermediate_size,
// num_attention_heads, num_key_value_heads, head_dim, vocab_size, tie_word_embeddings.
constexpr ArchShape kArchs[] = {
    {"llama-3-70b", 80, 8192, 28672, 64, 8, 128, 128256, false},
    {"qwen3-32b", 64, 5120, 25600, 64, 8, 128, 151936, false},
    {"llama-3-8b", 32, 4096, 14336, 32, 8, 128, 128256, false},
    {"mistral-7b", 32, 4096, 14336, 32, 8, 128, 32768, false},
    {"llama-3.2-1b", 16, 2048, 8192, 32, 8, 64, 128256, true},
};

// Bits per weight. Q8_0: 32 weights in 34 bytes = 8.5. Q4_K: 144 bytes per 256 = 4.5; Q6_K: 210 per
// 256 = 6.5625. Q4_K_M mixes Q4_K with Q6_K for some attn_v/ffn_down tensors: ~4.85 bits over the
// layers; its token embedding is Q4_K and its output projection Q6_K.
struct QuantBits {
  const char* name;
  double layer;
  double embed;
  double head;
};
constexpr QuantBits kQuants[] = {
    {"q4_K_M", 4.85, 4.5, 6.5625},
    {"q8_0", 8.5, 8.5, 8.5},
    {"f16", 16, 16, 16},
};

uint64_t bytes_of(double params, double bits) { return static_cast<uint64_t>(std::llround(params * bits / 8)); }

}  // namespace

partition::ModelCost preset_model(std::string_view preset, std::string_view quant) {
  const ArchShape* a = nullptr;
  for (const ArchShape& x : kArchs)
    if (preset == x.name) a = &x;
  if (a == nullptr) {
    std::string known;
    for (const auto& n : model_preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw TopologyError("unknown model preset '" + std::string(preset) + "' (known: " + known + ")");
  }
  const QuantBits* q = nullptr;
  for (const QuantBits& x : kQuants)
    if (quant == x.name) q = &x;
  if (q == nullptr) throw TopologyError("unknown quant '" + std::string(quant) + "' (known: q4_K_M, q8_0, f16)");

  const double embd = a->n_embd, q_dim = double(a->n_head) * a->head_dim, kv_dim = double(a->n_head_kv) * a->head_dim;
  // attn_q [n_embd, q_dim], attn_k/attn_v [n_embd, kv_dim], attn_output [q_dim, n_embd],
  // ffn_gate/ffn_up [n_embd, n_ff], ffn_down [n_ff, n_embd]
  const double layer_params = embd * q_dim * 2 + embd * kv_dim * 2 + 3.0 * embd * a->n_ff;
  partition::ModelCost m;
  partition::LayerCost l;
  l.weight_bytes = bytes_of(layer_params, q->layer) + static_cast<uint64_t>(2 * a->n_embd * 4);  // + f32 norms
  l.flops_per_token = 2 * layer_params;
  l.kv_bytes_per_token = static_cast<uint64_t>(2 * kv_dim * 2);  // K and V, f16
  m.layers.assign(static_cast<size_t>(a->n_layer), l);
  const double table = double(a->n_vocab) * a->n_embd;  // [n_embd, n_vocab]
  m.embed_bytes = bytes_of(table, q->embed);
  m.tied_embeddings = a->tied_embeddings;
  m.head_bytes = (a->tied_embeddings ? m.embed_bytes : bytes_of(table, q->head)) + static_cast<uint64_t>(a->n_embd * 4);
  m.head_flops_per_token = 2 * table;
  m.hidden_bytes_per_token = static_cast<uint64_t>(a->n_embd) * 4;
  return m;
}

std::vector<std::string> model_preset_names() {
  std::vector<std::string> out;
  for (const ArchShape& x : kArchs) out.emplace_back(x.name);
  return out;
}

uint64_t model_weight_bytes(const partition::ModelCost& m) {
  uint64_t total = m.embed_bytes + (m.tied_embeddings ? 0 : m.head_bytes);
  for (const auto& l : m.layers) total += l.weight_bytes;
  return total;
}

namespace {

struct DevicePreset {
  const char* name;
  double mem_gib;  // memory a node may use for its slice, GiB
  double peak_gbs;  // published peak memory bandwidth, GB/s
  double flops;     // int8/f16 CPU matmul rate for prompt processing, FLOP/s
};

// Decoding on the CPU reaches only part of the published peak bandwidth: we assume 65 %, what
// well-tuned CPU matmul-vector kernels reach on these memory systems (the GPU of an Apple SoC can
// get closer to peak; this runtime is CPU only). Usable memory leaves room for the OS and apps.
constexpr double kAchievableFraction = 0.65;
constexpr DevicePreset kDevices[] = {
    // Apple M2 Max: 400 GB/s LPDDR5 (Apple spec); 64 GB with ~48 GiB left for a model.
    {"m2-max-64gb", 48, 400, 1.5e12},
    // Apple M2 (MacBook Air): 100 GB/s LPDDR5 (Apple spec); 16 GB, ~11 GiB usable.
    {"m2-air-16gb", 11, 100, 0.6e12},
    // A recent phone: LPDDR5/5X, 51-64 GB/s peak; 8 GB, of which Android lets one foreground app keep ~4 GiB.
    {"phone-8gb", 4, 55, 0.3e12},
    // Raspberry Pi 5: 32-bit LPDDR4X-4267 = 17 GB/s peak; 8 GB, ~6.5 GiB usable.
    {"rpi5-8gb", 6.5, 17, 0.08e12},
    // Desktop, DDR5-5000 dual channel: 2 x 8 B x 5000 MT/s = 80 GB/s peak; 32 GB, ~26 GiB usable.
    {"desktop-ddr5-32gb", 26, 80, 1.0e12},
};

}  // namespace

partition::Device preset_device(std::string_view preset) {
  for (const DevicePreset& x : kDevices) {
    if (preset != x.name) continue;
    partition::Device d;
    d.name = x.name;
    d.mem_bytes = static_cast<uint64_t>(x.mem_gib * double(uint64_t{1} << 30));
    d.mem_bw_gbs = x.peak_gbs * kAchievableFraction;
    d.flops = x.flops;
    d.overhead_s = 50e-6;
    return d;
  }
  std::string known;
  for (const auto& n : device_preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw TopologyError("unknown device preset '" + std::string(preset) + "' (known: " + known + ")");
}

std::vector<std::string> device_preset_names() {
  std::vector<std::string> out;
  for (const DevicePreset& x : kDevices) out.emplace_back(x.name);
  return out;
}

}  // namespace zen::sim
