// AVX2 K-quant kernels, part 2: Q2_K, Q3_K and Q5_K dot products with a Q8_K activation row.
// Same ODR rules as kquants.cpp: anonymous-namespace helpers and intrinsics only.
#include "kernels/quant_k_avx2.h"
#include "kernels/quant_k_x86.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx2 {

float vec_dot_q2_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ2_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m256 d = _mm256_set1_ps(dx * _cvtsh_ss(w[b].d));
    const __m256 dmin = _mm256_set1_ps(dx * _cvtsh_ss(w[b].dmin));
    const __m128i raw = load128(w[b].scales);
    const __m128i sc = _mm_and_si128(raw, m4);
    const __m128i mins = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
    const __m256i mprod = _mm256_madd_epi16(_mm256_cvtepu8_epi16(mins), load256(x[b].bsums));
    acc_min = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(mprod), acc_min);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(w[b].qs + 32 * h);
      for (int s = 0; s < 4; ++s) {  // elements 128h + 32s .. +31: sub-blocks 8h + 2s, +1
        const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        const __m256i p = _mm256_maddubs_epi16(v, load256(x[b].qs + 128 * h + 32 * s));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, pair_u8(sc, 8 * h + 2 * s)));
      }
    }
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc) - hsum_ps(acc_min);
}

float vec_dot_q3_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ3_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const __m256 d = _mm256_set1_ps(x[b].d * _cvtsh_ss(w[b].d));
    const __m128i sc = q3_scales(w[b].scales);
    // Levels are used as q + 4 in [0, 7]: subtract 4 * sum_j sc_j * bsum_j at the end.
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), load256(x[b].bsums)), 2);
    const __m256i hm = load256(w[b].hmask);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i q = load256(w[b].qs + 32 * h);
      for (int s = 0; s < 4; ++s) {  // high bit of these 32 elements: bit 4h + s of hmask[l]
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3);
        const __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + s), m1), 2);
        const __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(low, high), load256(x[b].qs + 128 * h + 32 * s));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, pair_i8(sc, 8 * h + 2 * s)));
      }
    }
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, offset)), acc);
  }
  return hsum_ps(acc);
}

float vec_dot_q5_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ5_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i m1 = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m256 d = _mm256_set1_ps(dx * _cvtsh_ss(w[b].d));
    const __m128 dmin = _mm_set1_ps(dx * _cvtsh_ss(w[b].dmin));
    const __m128i sm = k4_scales_mins(w[b].scales);
    const __m128i mprod = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)), bsums_by_32(x[b].bsums));
    acc_min = _mm_fmadd_ps(dmin, _mm_cvtepi32_ps(mprod), acc_min);
    const __m256i sc2 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    const __m256i hb = load256(w[b].qh);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {  // sub-blocks 2j (low nibbles, qh bit 2j), 2j+1 (high, bit 2j+1)
      const __m256i q = load256(w[b].qs + 32 * j);
      const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), m1), 4);
      const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), m1), 4);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
      __m256i pl = _mm256_maddubs_epi16(lo, load256(x[b].qs + 64 * j));
      __m256i ph = _mm256_maddubs_epi16(hi, load256(x[b].qs + 64 * j + 32));
      pl = _mm256_madd_epi16(pl, bcast_i16(sc2, 2 * j));
      ph = _mm256_madd_epi16(ph, bcast_i16(sc2, 2 * j + 1));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc) - hsum128(acc_min);
}

}  // namespace zen::kernels::kq_avx2
