#include "engine/quant_mix.h"

#include <cctype>
#include <cstdlib>

namespace zen::engine {

using kernels::DType;

namespace {

struct MixInfo {
  Mix mix;
  const char* name;
  uint32_t file_type;
  DType base;
};

constexpr MixInfo kMixes[] = {
    {Mix::F32, "f32", 0, DType::F32},       {Mix::F16, "f16", 1, DType::F16},
    {Mix::BF16, "bf16", 32, DType::BF16},   {Mix::Q8_0, "q8_0", 7, DType::Q8_0},
    {Mix::Q4_0, "q4_0", 2, DType::Q4_0},    {Mix::Q4_1, "q4_1", 3, DType::Q4_1},
    {Mix::Q5_0, "q5_0", 8, DType::Q5_0},    {Mix::Q5_1, "q5_1", 9, DType::Q5_1},
    {Mix::Q2_K, "q2_K", 10, DType::Q2_K},   {Mix::Q3_K_M, "q3_K_M", 12, DType::Q3_K},
    {Mix::Q4_K_M, "q4_K_M", 15, DType::Q4_K}, {Mix::Q5_K_M, "q5_K_M", 17, DType::Q5_K},
    {Mix::Q6_K, "q6_K", 18, DType::Q6_K},
};

const MixInfo& info(Mix m) {
  for (const auto& i : kMixes)
    if (i.mix == m) return i;
  return kMixes[0];
}

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// Layers that get more bits in the *_M mixes: the first and last eighth, and every third between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::atoi(name.c_str() + 4);
}

bool has(const std::string& name, const char* part) { return name.find(part) != std::string::npos; }

bool is_k_quant(DType t) {
  return t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
}

// Rows that are not a multiple of 256 cannot hold K-quant super-blocks: fall back.
DType fallback(DType t) {
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K: return DType::Q4_0;
    case DType::Q4_K: return DType::Q5_0;
    case DType::Q5_K: return DType::Q5_1;
    case DType::Q6_K: return DType::Q8_0;
    default: return t;
  }
}

}  // namespace

std::optional<Mix> mix_from_name(std::string_view name) {
  for (const auto& i : kMixes)
    if (iequal(i.name, name)) return i.mix;
  return std::nullopt;
}

std::string mix_name(Mix m) { return info(m).name; }
uint32_t mix_file_type(Mix m) { return info(m).file_type; }
DType mix_base_type(Mix m) { return info(m).base; }

std::vector<std::string> mix_names() {
  std::vector<std::string> out;
  for (const auto& i : kMixes) out.emplace_back(i.name);
  return out;
}

DType choose_type(Mix m, const std::string& name, int n_dims, int64_t ne0, int n_layer, int n_gqa, bool tied_output) {
  if (n_dims < 2) return DType::F32;  // norms and biases
  DType t = mix_base_type(m);
  const bool quantized = !(m == Mix::F32 || m == Mix::F16 || m == Mix::BF16);
  if (!quantized) return t;
  const int il = layer_of(name);
  if (name == "output.weight" || (tied_output && name == "token_embd.weight")) {
    if (t != DType::Q8_0) t = DType::Q6_K;
  } else if (has(name, "attn_v.weight")) {
    if (m == Mix::Q2_K) t = n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (m == Mix::Q3_K_M) t = il < 2 ? DType::Q5_K : DType::Q4_K;
    else if ((m == Mix::Q4_K_M || m == Mix::Q5_K_M) && use_more_bits(il, n_layer)) t = DType::Q6_K;
  } else if (has(name, "ffn_down")) {
    if (m == Mix::Q2_K) t = DType::Q3_K;
    else if (m == Mix::Q3_K_M) t = il < n_layer / 16 ? DType::Q5_K : DType::Q4_K;
    else if ((m == Mix::Q4_K_M || m == Mix::Q5_K_M) && use_more_bits(il, n_layer)) t = DType::Q6_K;
  } else if (has(name, "attn_output.weight")) {
    if (m == Mix::Q2_K) t = DType::Q3_K;
    else if (m == Mix::Q3_K_M) t = DType::Q4_K;
  }
  if (is_k_quant(t) && ne0 % kernels::QK_K != 0) t = fallback(t);
  if (ne0 % kernels::type_info(t).block_size != 0) t = DType::F16;
  return t;
}

}  // namespace zen::engine
