// Private helpers of the AVX-512 K-quant files (kernels/x86/avx512/kquants*.cpp); include only
// from files compiled with the AVX-512 flags. Everything is in an anonymous namespace, so each
// file gets its own internal copy and no AVX-512 code can be picked by the linker for another
// file (ODR safety).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

// GCC 12 reports its own _mm512_undefined_*() placeholders (inside _mm512_cvtepi32_ps,
// _mm512_inserti64x4, _mm512_reduce_add_ps) as uninitialized: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace zen::kernels::kq_avx512 {
namespace {

inline __m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// 16-bit lanes 0..15 = a, 16..31 = b (e.g. shift counts for the two halves of a broadcast).
inline __m512i halves_i16(short a, short b) {
  return _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1);
}
// Bytes 0..31 = a, 32..63 = b.
inline __m512i halves_i8(char a, char b) { return _mm512_inserti64x4(_mm512_set1_epi8(a), _mm256_set1_epi8(b), 1); }

// Permutation indices for scales: 16-bit lane i -> first + i / 16 (sub-blocks of 32 weights).
inline __m512i idx_by_32(int first) { return halves_i16(static_cast<short>(first), static_cast<short>(first + 1)); }
// 16-bit lane i -> first + i / 8 (sub-blocks of 16 weights).
inline __m512i idx_by_16(int first) {
  const __m512i base = _mm512_set_epi64(0x0003000300030003LL, 0x0003000300030003LL, 0x0002000200020002LL,
                                        0x0002000200020002LL, 0x0001000100010001LL, 0x0001000100010001LL, 0, 0);
  return _mm512_add_epi16(base, _mm512_set1_epi16(static_cast<short>(first)));
}

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

inline float hsum128(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hsum256(__m256 v) { return hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))); }

// Q4_K: the 64 levels of elements 64j .. 64j+63 (4-bit, one byte each, in element order).
inline __m512i q4_levels(const uint8_t* qs, int j) {
  const __m512i q = _mm512_broadcast_i64x4(load256(qs + 32 * j));
  return _mm512_and_si512(_mm512_srlv_epi16(q, halves_i16(0, 4)), _mm512_set1_epi8(0x0f));
}

// Q6_K: the 64 levels (6-bit, stored as q + 32) of elements 128h + 64k .. +63, k in {0, 1}.
inline __m512i q6_levels(const uint8_t* ql, const uint8_t* qh, int h, int k) {
  const __m512i l = load512(ql + 64 * h);
  const __m512i hb = _mm512_broadcast_i64x4(load256(qh + 32 * h));
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  // bytes 0..31 of ql carry elements l (low nibble) and l+64 (high); bytes 32..63: l+32, l+96.
  // qh bit pairs 0,1 (k = 0) or 2,3 (k = 1) of each half become bits 4..5.
  if (k == 0)
    return _mm512_ternarylogic_epi32(_mm512_and_si512(l, m4), _mm512_sllv_epi16(hb, halves_i16(4, 2)), m30, 0xf8);
  return _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_srlv_epi16(hb, halves_i16(0, 2)),
                                   m30, 0xf8);
}

}  // namespace
}  // namespace zen::kernels::kq_avx512
