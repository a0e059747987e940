// Quantization mixes: which block type each tensor gets for a file type such as q4_K_M.
// The rules follow llama.cpp's defaults (facts about its file types), so a file we write
// has the same per-tensor types as llama-quantize's.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/types.h"

namespace zen::engine {

enum class Mix { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K };

std::optional<Mix> mix_from_name(std::string_view name);  // case-insensitive: "q4_k_m", "Q8_0", "f16"
std::string mix_name(Mix m);
std::vector<std::string> mix_names();
uint32_t mix_file_type(Mix m);  // general.file_type value
kernels::DType mix_base_type(Mix m);

// Type for one tensor. n_gqa = n_head / n_head_kv. `tied_output` is true when the model has
// no output.weight (token_embd then gets the output rule). 1-D tensors stay F32.
kernels::DType choose_type(Mix m, const std::string& name, int n_dims, int64_t ne0, int n_layer, int n_gqa,
                           bool tied_output);

}  // namespace zen::engine
