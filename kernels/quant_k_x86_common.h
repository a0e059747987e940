// Private helpers shared by the AVX2 and AVX-512 K-quant files (through kernels/quant_k_avx2.h
// and kernels/quant_k_avx512.h): scale-field decoding with SSE/AVX2 intrinsics. Everything is in
// an anonymous namespace, so each file compiles its own internal copy with its own ISA flags and
// the linker can never substitute one file's copy for another's (ODR safety).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace zen::kernels::kq_x86 {
namespace {

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hsum256(__m256 v) { return hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

// Q4_K/Q5_K 12-byte scale field -> bytes 0..7: the 8 six-bit scales, bytes 8..15: the 8 mins.
inline __m128i k4_scales_mins(const uint8_t* packed) {
  uint32_t a[3];
  std::memcpy(a, packed, 12);
  const uint32_t s_lo = a[0] & 0x3f3f3f3fu;
  const uint32_t m_lo = a[1] & 0x3f3f3f3fu;
  const uint32_t s_hi = (a[2] & 0x0f0f0f0fu) | ((a[0] >> 2) & 0x30303030u);
  const uint32_t m_hi = ((a[2] >> 4) & 0x0f0f0f0fu) | ((a[1] >> 2) & 0x30303030u);
  return _mm_set_epi32(static_cast<int>(m_hi), static_cast<int>(m_lo), static_cast<int>(s_hi), static_cast<int>(s_lo));
}

// Q3_K 12-byte scale field -> 16 signed scales (int8, already minus 32).
inline __m128i q3_scales(const uint8_t* packed) {
  uint32_t a[3];
  std::memcpy(a, packed, 12);
  const uint32_t s0 = (a[0] & 0x0f0f0f0fu) | ((a[2] & 0x03030303u) << 4);
  const uint32_t s1 = (a[1] & 0x0f0f0f0fu) | (((a[2] >> 2) & 0x03030303u) << 4);
  const uint32_t s2 = ((a[0] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 4) & 0x03030303u) << 4);
  const uint32_t s3 = ((a[1] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 6) & 0x03030303u) << 4);
  const __m128i s = _mm_set_epi32(static_cast<int>(s3), static_cast<int>(s2), static_cast<int>(s1), static_cast<int>(s0));
  return _mm_sub_epi8(s, _mm_set1_epi8(32));
}

// Sum of the 32 activations of each Q4_K/Q5_K sub-block: pairs of the 16 Q8_K bsums (int16).
inline __m128i bsums_by_32(const int16_t* bsums) {
  const __m256i bs = load256(bsums);
  return _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
}

// Signed value of the first of 256 floats whose magnitude equals amax (the Q8_K reference
// picks the first maximum, and its sign decides the sign of d).
inline float first_with_magnitude(const float* x, float amax) {
  const __m256 sign = _mm256_set1_ps(-0.f), va = _mm256_set1_ps(amax);
  for (int i = 0; i < 256; i += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), va, _CMP_EQ_OQ));
    if (hit) return x[i + __builtin_ctz(static_cast<unsigned>(hit))];
  }
  return 0.f;
}

}  // namespace
}  // namespace zen::kernels::kq_x86
