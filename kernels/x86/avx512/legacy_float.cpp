// AVX-512 kernels for the plain float types: F16/BF16 conversions to and from float, and the
// F32, F16 and BF16 dot products. BF16 uses VDPBF16PS (pairs of bf16 products summed into fp32;
// the instruction treats bf16 subnormal inputs as zero). Tails use masked loads.
// Internal linkage and intrinsics only (see kernels/x86/avx512/legacy.cpp on ODR safety).
// GCC 12's AVX-512 headers self-initialize their _mm512_undefined_* values, which -Wall reports
// as uninitialized once inlined (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

TypeOps& slot(OpsTable& t, DType d) { return reinterpret_cast<TypeOps*>(&t)[static_cast<uint32_t>(d)]; }

// Mask of the first k (< 16 or < 32) lanes.
__mmask16 first16(int64_t k) { return static_cast<__mmask16>((1u << k) - 1u); }
__mmask32 first32(int64_t k) { return static_cast<__mmask32>((1ull << k) - 1u); }

__m512 f16x16(const uint16_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
__m512 bf16x16(const uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

// Float -> bf16 with round-to-nearest-even done in integers (VCVTNEPS2BF16 would flush
// subnormals); a nan becomes a quiet nan with the same sign and top payload bits.
__m256i bf16_from_float(__m512 f) {
  const __m512i x = _mm512_castps_si512(f);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q);
  const __m512i q = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(x, 16), _mm512_set1_epi32(64));
  return _mm512_cvtepi32_epi16(q);
}

void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : first16(n - i);
    _mm512_mask_storeu_ps(dst + i, m, f16x16(x + i, m));
  }
}

void quantize_f16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : first16(n - i);
    const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_mask_storeu_epi16(y + i, m, h);
  }
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : first16(n - i);
    _mm512_mask_storeu_ps(dst + i, m, bf16x16(x + i, m));
  }
}

void quantize_bf16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : first16(n - i);
    _mm256_mask_storeu_epi16(y + i, m, bf16_from_float(_mm512_maskz_loadu_ps(m, src + i)));
  }
}

// ---- Dot products: four accumulators over 4 steps, then masked single steps ----

__m512bh bf16x32(const uint16_t* p, __mmask32 m) { return (__m512bh)_mm512_maskz_loadu_epi16(m, p); }

// One step of each type: 16 floats (F32, F16) or 32 bf16 (two per fp32 lane, VDPBF16PS).
struct F32Step {
  using T = float;
  static constexpr int64_t kWidth = 16;
  static __m512 madd(__m512 acc, const float* w, const float* x, int64_t left) {
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : first16(left);
    return _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w), _mm512_maskz_loadu_ps(m, x), acc);
  }
};
struct F16Step {
  using T = uint16_t;
  static constexpr int64_t kWidth = 16;
  static __m512 madd(__m512 acc, const uint16_t* w, const uint16_t* x, int64_t left) {
    const __mmask16 m = left >= 16 ? static_cast<__mmask16>(0xffff) : first16(left);
    return _mm512_fmadd_ps(f16x16(w, m), f16x16(x, m), acc);
  }
};
struct BF16Step {
  using T = uint16_t;
  static constexpr int64_t kWidth = 32;
  static __m512 madd(__m512 acc, const uint16_t* w, const uint16_t* x, int64_t left) {
    const __mmask32 m = left >= 32 ? static_cast<__mmask32>(0xffffffffu) : first32(left);
    return _mm512_dpbf16_ps(acc, bf16x32(w, m), bf16x32(x, m));
  }
};

template <class S>
float vec_dot(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const typename S::T*>(vw);
  const auto* x = static_cast<const typename S::T*>(vx);
  constexpr int64_t kW = S::kWidth;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 4 * kW <= n; i += 4 * kW)
    for (int k = 0; k < 4; ++k) acc[k] = S::madd(acc[k], w + i + kW * k, x + i + kW * k, kW);
  for (; i < n; i += kW) acc[0] = S::madd(acc[0], w + i, x + i, n - i);
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

}  // namespace

namespace avx512_legacy {
void fill_float(OpsTable& t) {
  slot(t, DType::F32).vec_dot = vec_dot<F32Step>;
  TypeOps& f16 = slot(t, DType::F16);
  f16.dequantize = dequantize_f16;
  f16.quantize = quantize_f16;
  f16.vec_dot = vec_dot<F16Step>;
  TypeOps& bf16 = slot(t, DType::BF16);
  bf16.dequantize = dequantize_bf16;
  bf16.quantize = quantize_bf16;
  bf16.vec_dot = vec_dot<BF16Step>;
}
}  // namespace avx512_legacy

}  // namespace zen::kernels
