// Per-type kernel table and run-time ISA dispatch.
//
// Every type has a scalar reference (kernels/quant_*.cpp). Per-ISA files (kernels/x86/avx2,
// kernels/x86/avx512, kernels/arm) overlay faster versions of some entries. The table for an
// ISA level is: scalar, then each lower level's overlay, then its own. Tests compare every
// level's entries with the scalar table.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "kernels/types.h"

namespace zen::kernels {

// Convert n elements (n a multiple of the block size) from this type to float.
using DequantizeFn = void (*)(const void* src, float* dst, int64_t n);
// Float -> this type. For activations (Q8_0, Q8_1, Q8_K, F16, BF16) this is the conversion
// done before a dot product; for weight types it is the reference-quality quantizer.
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n);
// Dot product of n elements: w is in this type, x in this type's vec_dot_type (relayout_x'd).
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
// Optional tile product: y[j * ldy + i] = dot(w row i, x row j) for i < nr, j < nc. The only
// product of a type whose rows are interleaved (kernels/repack.h row_group), which has no vec_dot.
// Rows of w are w_stride bytes apart, rows of x (already in vec_dot_type) x_stride bytes.
using GemmFn = void (*)(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride,
                        const void* x, size_t x_stride, float* y, size_t ldy);

// Rearranges n elements of activations, already converted to vec_dot_type, in place.
using RelayoutFn = void (*)(void* x, int64_t n);

struct TypeOps {
  DequantizeFn dequantize = nullptr;
  QuantizeFn quantize = nullptr;
  VecDotFn vec_dot = nullptr;
  GemmFn gemm = nullptr;
  // gemm's result for every (row, column) is bit-identical to vec_dot's. Then a single row
  // may use vec_dot; otherwise every row goes through gemm, so that a row's result never
  // depends on how many other rows share its batch.
  bool gemm_exact = false;
  // When set, vec_dot and gemm read their activations in this ISA's own order within each
  // block (same size as vec_dot_type): convert with vec_dot_type's quantize, then relayout_x.
  RelayoutFn relayout_x = nullptr;
};

inline constexpr size_t kMaxTypeId = 32;
using OpsTable = std::array<TypeOps, kMaxTypeId>;

inline TypeOps& entry(OpsTable& t, DType d) { return t[static_cast<size_t>(d)]; }

// Neon: armv8-a Advanced SIMD; NeonDotprod: + SDOT (HWCAP_ASIMDDP); NeonI8mm: + SMMLA (HWCAP2_I8MM).
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3, NeonDotprod = 4, NeonI8mm = 5 };
inline constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::NeonDotprod, Isa::NeonI8mm};
const char* isa_name(Isa isa);
// Best level this CPU supports.
Isa detected_isa();
bool isa_supported(Isa isa);
// Level in use: detected_isa(), or the ZEN_ISA environment variable (an isa_name: scalar, avx2,
// avx512, neon, neon-dotprod, neon-i8mm)
// when it names a supported level, or whatever set_active_isa chose last.
Isa active_isa();
void set_active_isa(Isa isa);  // throws if unsupported

// The table for the active level, or for a given level (tests, benchmarks).
const OpsTable& ops_table();
const OpsTable& ops_table(Isa isa);
inline const TypeOps& ops(DType t) { return ops_table()[static_cast<size_t>(t)]; }
inline const TypeOps& ops(DType t, Isa isa) { return ops_table(isa)[static_cast<size_t>(t)]; }

// Converts n floats into the activations that w_type's vec_dot and gemm at `isa` read
// (vec_dot_type's quantize, then relayout_x). dst holds row_bytes(vec_dot_type, n).
void prepare_activations(DType w_type, Isa isa, const float* src, void* dst, int64_t n);

// Fill functions, one per (family, level). Each sets only the entries it implements.
// Legacy family: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
// K family: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
void fill_legacy_scalar(OpsTable& t);
void fill_kquants_scalar(OpsTable& t);
// Load-time layouts (kernels/repack.h): Q4_K_LANES.
void fill_lanes_scalar(OpsTable& t);
#if defined(ZEN_ARCH_X86)
void fill_legacy_avx2(OpsTable& t);
void fill_kquants_avx2(OpsTable& t);
void fill_legacy_avx512(OpsTable& t);
void fill_kquants_avx512(OpsTable& t);
void fill_lanes_avx512(OpsTable& t);
#endif
#if defined(ZEN_ARCH_ARM)
void fill_legacy_neon(OpsTable& t);
void fill_kquants_neon(OpsTable& t);
void fill_legacy_neon_dotprod(OpsTable& t);
void fill_kquants_neon_dotprod(OpsTable& t);
void fill_legacy_neon_i8mm(OpsTable& t);
void fill_kquants_neon_i8mm(OpsTable& t);
#endif

}  // namespace zen::kernels
