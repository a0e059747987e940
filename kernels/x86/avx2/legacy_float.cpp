// AVX2 (+FMA, F16C) kernels for the plain float types: F16/BF16 conversions to and from float
// and the F32, F16, BF16 dot products (float accumulation in four independent registers).
// Internal linkage and intrinsics only (see kernels/x86/avx2/legacy.cpp on ODR safety).
#include <immintrin.h>

#include <cstdint>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

TypeOps& slot(OpsTable& t, DType d) { return reinterpret_cast<TypeOps*>(&t)[static_cast<uint32_t>(d)]; }

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// ---- bf16: the top half of a float; conversion from float rounds to nearest even ----

float bf16_scalar(uint16_t h) {
  const __m128i v = _mm_cvtsi32_si128(static_cast<int32_t>(static_cast<uint32_t>(h) << 16));
  return _mm_cvtss_f32(_mm_castsi128_ps(v));
}

uint16_t bf16_from_float_scalar(float f) {
  const uint32_t x = static_cast<uint32_t>(_mm_cvtsi128_si32(_mm_castps_si128(_mm_set_ss(f))));
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64u);  // quiet nan
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

__m256 load_bf16x8(const uint16_t* p) {
  const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

__m256 load_f16x8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(x + i));
  for (; i < n; ++i) dst[i] = _cvtsh_ss(x[i]);
}

void quantize_f16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_bf16x8(x + i));
  for (; i < n; ++i) dst[i] = bf16_scalar(x[i]);
}

void quantize_bf16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_loadu_ps(src + i);
    const __m256i x = _mm256_castps_si256(f);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(64));
    r = _mm256_blendv_epi8(r, nan, _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
    // 8 x u32 (each <= 0xffff) -> 8 x u16; packus works per 128-bit lane, the permute joins them.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) y[i] = bf16_from_float_scalar(src[i]);
}

// ---- Dot products: four 8-lane accumulators, then single vectors, then a scalar tail ----

struct F32Elems {
  using T = float;
  static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
  static float one(float v) { return v; }
};
struct F16Elems {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) { return load_f16x8(p); }
  static float one(uint16_t v) { return _cvtsh_ss(v); }
};
struct BF16Elems {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) { return load_bf16x8(p); }
  static float one(uint16_t v) { return bf16_scalar(v); }
};

template <class E>
float vec_dot(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const typename E::T*>(vw);
  const auto* x = static_cast<const typename E::T*>(vx);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(E::load8(w + i + 8 * k), E::load8(x + i + 8 * k), acc[k]);
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(E::load8(w + i), E::load8(x + i), acc[0]);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += E::one(w[i]) * E::one(x[i]);
  return sum;
}

}  // namespace

namespace avx2_legacy {
void fill_float(OpsTable& t) {
  slot(t, DType::F32).vec_dot = vec_dot<F32Elems>;
  TypeOps& f16 = slot(t, DType::F16);
  f16.dequantize = dequantize_f16;
  f16.quantize = quantize_f16;
  f16.vec_dot = vec_dot<F16Elems>;
  TypeOps& bf16 = slot(t, DType::BF16);
  bf16.dequantize = dequantize_bf16;
  bf16.quantize = quantize_bf16;
  bf16.vec_dot = vec_dot<BF16Elems>;
}
}  // namespace avx2_legacy

}  // namespace zen::kernels
