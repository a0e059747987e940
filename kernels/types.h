// Tensor element types and their block layouts, numbered as in GGUF (ggml_type ids).
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace zen::kernels {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
  // Internal: never in a file. Load-time layouts of Q4_K for the AVX-512 kernels, made by
  // repack() (kernels/quant_k_lanes.cpp): each super-block's levels reordered (LANES), and
  // the same with rows interleaved in groups of 4, block by block (X4: read only by gemm).
  // Q6_K with levels reordered the same way (Q6_K_LANES, one 32-bit lane per sub-block of 16).
  Q6_K_LANES = 28,
  Q4_K_X4 = 29,
  Q4_K_LANES = 31,
};

struct TypeInfo {
  DType type;
  const char* name;       // as llama.cpp prints it: "q4_K", "f16", ...
  int64_t block_size;     // elements per block (1 for plain floats)
  size_t block_bytes;     // bytes per block
  DType vec_dot_type;     // what activations are converted to before a dot product
  bool internal = false;  // a load-time layout: not accepted in files or by name
};

// nullptr for an id this runtime does not know.
const TypeInfo* find_type(uint32_t id);
const TypeInfo& type_info(DType t);
inline const char* type_name(DType t) { return type_info(t).name; }
// Case-insensitive lookup by name ("q4_k", "Q8_0", "bf16").
std::optional<DType> type_from_name(std::string_view name);

// Bytes taken by n elements; n must be a multiple of the block size.
inline size_t row_bytes(DType t, int64_t n) {
  const TypeInfo& ti = type_info(t);
  return static_cast<size_t>(n / ti.block_size) * ti.block_bytes;
}

// Block geometry shared by every kernel.
inline constexpr int64_t QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
inline constexpr int64_t QK_K = 256;
inline constexpr int64_t K_SCALE_SIZE = 12;

// Block structs, bit-compatible with GGUF. Half-precision fields are raw uint16_t bits.
struct BlockQ4_0 { uint16_t d; uint8_t qs[QK4_0 / 2]; };
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[QK4_1 / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; };
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[QK8_0]; };
struct BlockQ8_1 { uint16_t d, s; int8_t qs[QK8_1]; };  // s = d * sum(qs)
struct BlockQ2_K { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint16_t d, dmin; };
struct BlockQ3_K { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; };
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; };
struct BlockQ6_K { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

}  // namespace zen::kernels
