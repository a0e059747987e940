// AVX2 K-quant kernels, part 2: Q2_K, Q3_K and Q5_K dot products with a Q8_K activation row.
// Same ODR rules as kquants.cpp: anonymous-namespace helpers and intrinsics only.
#include <immintrin.h>

#include <cstring>

#include "kernels/quant_k_x86.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx2 {
namespace {

float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
__m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// int16 vector: lanes 0..7 = byte a of s8, lanes 8..15 = byte a + 1 (unsigned or signed).
__m256i pair_u8(__m128i s8, int a) {
  const long long lo = 0x0101010101010101LL * a, hi = 0x0101010101010101LL * (a + 1);
  return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(s8, _mm_set_epi64x(hi, lo)));
}
__m256i pair_i8(__m128i s8, int a) {
  const long long lo = 0x0101010101010101LL * a, hi = 0x0101010101010101LL * (a + 1);
  return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, _mm_set_epi64x(hi, lo)));
}

// Q3_K 12-byte scale field -> 16 signed scales (int8, already minus 32).
__m128i q3_scales(const uint8_t* packed) {
  uint32_t a[3];
  std::memcpy(a, packed, 12);
  const uint32_t s0 = (a[0] & 0x0f0f0f0fu) | ((a[2] & 0x03030303u) << 4);
  const uint32_t s1 = (a[1] & 0x0f0f0f0fu) | (((a[2] >> 2) & 0x03030303u) << 4);
  const uint32_t s2 = ((a[0] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 4) & 0x03030303u) << 4);
  const uint32_t s3 = ((a[1] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 6) & 0x03030303u) << 4);
  const __m128i s = _mm_set_epi32(static_cast<int>(s3), static_cast<int>(s2), static_cast<int>(s1), static_cast<int>(s0));
  return _mm_sub_epi8(s, _mm_set1_epi8(32));
}

}  // namespace

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
  __m256 acc = _mm256_setzero_ps(), acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m256 d = _mm256_set1_ps(dx * _cvtsh_ss(w[b].d));
    const __m256 dmin = _mm256_set1_ps(dx * _cvtsh_ss(w[b].dmin));
    uint32_t a[3];
    std::memcpy(a, w[b].scales, 12);
    const uint32_t s_lo = a[0] & 0x3f3f3f3fu, m_lo = a[1] & 0x3f3f3f3fu;
    const uint32_t s_hi = (a[2] & 0x0f0f0f0fu) | ((a[0] >> 2) & 0x30303030u);
    const uint32_t m_hi = ((a[2] >> 4) & 0x0f0f0f0fu) | ((a[1] >> 2) & 0x30303030u);
    const __m128i sc = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(s_hi), static_cast<int>(s_lo)));
    const __m128i mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(m_hi), static_cast<int>(m_lo)));
    // mins against the sums of 32 activations (pairs of bsums), spread as int32 pairs
    const __m256i mins2 = _mm256_cvtepu16_epi32(mins);  // m_j in the low half of each int32
    const __m256i mprod = _mm256_madd_epi16(_mm256_or_si256(mins2, _mm256_slli_epi32(mins2, 16)), load256(x[b].bsums));
    acc_min = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(mprod), acc_min);
    const __m256i sc2 = _mm256_broadcastsi128_si256(sc);
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
      pl = _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sc2, _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0202 * (2 * j)))));
      ph = _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sc2, _mm256_set1_epi16(static_cast<short>(0x0100 + 0x0202 * (2 * j + 1)))));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc) - hsum_ps(acc_min);
}

}  // namespace zen::kernels::kq_avx2
