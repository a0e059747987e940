// Private helpers of the AVX2 K-quant files (kernels/x86/avx2/kquants*.cpp); include only from
// files compiled with -mavx2 -mfma -mf16c. Everything is in an anonymous namespace, so each file
// gets its own internal copy and the linker cannot mix them with other files' code (ODR safety).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace zen::kernels::kq_avx2 {
namespace {

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hsum_ps(__m256 v) { return hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

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

// Broadcast 16-bit lane k of both 128-bit halves of v to all lanes.
inline __m256i bcast_i16(__m256i v, int k) {
  return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0202 * k)));
}

// int16 vector: lanes 0..7 = byte a of s8, lanes 8..15 = byte a + 1 (unsigned / signed bytes).
inline __m128i pair_bytes(__m128i s8, int a) {
  const long long lo = 0x0101010101010101LL * a, hi = 0x0101010101010101LL * (a + 1);
  return _mm_shuffle_epi8(s8, _mm_set_epi64x(hi, lo));
}
inline __m256i pair_u8(__m128i s8, int a) { return _mm256_cvtepu8_epi16(pair_bytes(s8, a)); }
inline __m256i pair_i8(__m128i s8, int a) { return _mm256_cvtepi8_epi16(pair_bytes(s8, a)); }

// Q6_K: the 4 vectors of 32 levels (6-bit, stored as q + 32) of elements 128h .. 128h+127.
inline void q6_levels(const uint8_t* ql, const uint8_t* qh, int h, __m256i* q) {
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  const __m256i hb = load256(qh + 32 * h);
  const __m256i l0 = load256(ql + 64 * h), l1 = load256(ql + 64 * h + 32);
  q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
  q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
}

}  // namespace
}  // namespace zen::kernels::kq_avx2
