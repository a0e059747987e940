// Private helpers of the AVX2 K-quant files (kernels/x86/avx2/kquants*.cpp); include only from
// files compiled with -mavx2 -mfma -mf16c. Everything is in an anonymous namespace, so each file
// gets its own internal copy and the linker cannot mix them with other files' code (ODR safety).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/quant_k_x86_common.h"

namespace zen::kernels::kq_avx2 {
namespace {

using namespace kq_x86;  // NOLINT: the shared scale decoders and loads

inline float hsum_ps(__m256 v) { return hsum256(v); }

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
