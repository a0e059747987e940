// AVX-512 (F/BW/VL/DQ/VNNI) K-quant kernels, part 2: Q2_K, Q3_K and Q5_K dot products with a
// Q8_K activation row, 64 weights per step as in kquants.cpp. Extra level bits (Q3_K hmask,
// Q5_K qh) are tested into a byte mask and added with a masked byte add.
// Same ODR rules as kquants.cpp: anonymous-namespace helpers and intrinsics only.
#include "kernels/quant_k_avx512.h"
#include "kernels/quant_k_x86.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx512 {

float vec_dot_q2_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ2_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m512i shift01 = halves_i16(0, 2), shift23 = halves_i16(4, 6);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m512 d = _mm512_set1_ps(dx * _cvtsh_ss(w[b].d));
    const __m128i raw = load128(w[b].scales);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0f)));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f)));
    const __m256i mprod = _mm256_madd_epi16(mn16, load256(x[b].bsums));
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(dx * _cvtsh_ss(w[b].dmin)), _mm256_cvtepi32_ps(mprod), acc_min);
    const __m512i sc = _mm512_zextsi256_si512(sc16);
    __m512i sumi = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {  // byte l of qs[32h..] holds elements 128h + l + 32s in bit pair s
      const __m512i q = _mm512_broadcast_i64x4(load256(w[b].qs + 32 * h));
      const __m512i v0 = _mm512_and_si512(_mm512_srlv_epi16(q, shift01), m3);
      const __m512i v1 = _mm512_and_si512(_mm512_srlv_epi16(q, shift23), m3);
      const __m512i p0 = _mm512_maddubs_epi16(v0, load512(x[b].qs + 128 * h));
      const __m512i p1 = _mm512_maddubs_epi16(v1, load512(x[b].qs + 128 * h + 64));
      sumi = _mm512_dpwssd_epi32(sumi, p0, _mm512_permutexvar_epi16(idx_by_16(8 * h), sc));
      sumi = _mm512_dpwssd_epi32(sumi, p1, _mm512_permutexvar_epi16(idx_by_16(8 * h + 4), sc));
    }
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc);
  }
  return _mm512_reduce_add_ps(acc) - hsum256(acc_min);
}

float vec_dot_q3_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ3_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m512i four = _mm512_set1_epi8(4);
  const __m512i shift01 = halves_i16(0, 2), shift23 = halves_i16(4, 6);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const __m512 d = _mm512_set1_ps(x[b].d * _cvtsh_ss(w[b].d));
    const __m256i sc16 = _mm256_cvtepi8_epi16(q3_scales(w[b].scales));
    const __m512i sc = _mm512_zextsi256_si512(sc16);
    // Levels are used as q + 4 in [0, 7]: subtract 4 * sum_j sc_j * bsum_j.
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, load256(x[b].bsums)), 2);
    __m512i sumi = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(offset));
    const __m512i hm = _mm512_broadcast_i64x4(load256(w[b].hmask));
    for (int h = 0; h < 2; ++h) {
      const __m512i q = _mm512_broadcast_i64x4(load256(w[b].qs + 32 * h));
      // elements 128h + 32s + l: high bit is bit 4h + s of hmask[l]
      const __mmask64 k0 = _mm512_test_epi8_mask(hm, halves_i8(static_cast<char>(1 << (4 * h)), static_cast<char>(2 << (4 * h))));
      const __mmask64 k1 = _mm512_test_epi8_mask(hm, halves_i8(static_cast<char>(4 << (4 * h)), static_cast<char>(8 << (4 * h))));
      __m512i v0 = _mm512_and_si512(_mm512_srlv_epi16(q, shift01), m3);
      __m512i v1 = _mm512_and_si512(_mm512_srlv_epi16(q, shift23), m3);
      v0 = _mm512_mask_add_epi8(v0, k0, v0, four);
      v1 = _mm512_mask_add_epi8(v1, k1, v1, four);
      const __m512i p0 = _mm512_maddubs_epi16(v0, load512(x[b].qs + 128 * h));
      const __m512i p1 = _mm512_maddubs_epi16(v1, load512(x[b].qs + 128 * h + 64));
      sumi = _mm512_dpwssd_epi32(sumi, p0, _mm512_permutexvar_epi16(idx_by_16(8 * h), sc));
      sumi = _mm512_dpwssd_epi32(sumi, p1, _mm512_permutexvar_epi16(idx_by_16(8 * h + 4), sc));
    }
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// x in the lane-aligned layout (relayout_q8_K_lanes); the same arithmetic as vec_dot_q4_K.
float vec_dot_q5_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ5_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  __m128 acc = _mm_setzero_ps(), acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m128i sm = k4_scales_mins(w[b].scales);
    const __m128i mprod = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)), load128(x[b].bsums));
    const LanePair v[2] = {q5_lane_levels(w[b].qs, w[b].qh, 0), q5_lane_levels(w[b].qs, w[b].qh, 1)};
    const __m128i sumi = fold4(dot_lanes(v, x[b].qs, lane_scales(sm)));
    acc = _mm_fmadd_ps(_mm_set1_ps(dx * _cvtsh_ss(w[b].d)), _mm_cvtepi32_ps(sumi), acc);
    acc_min = _mm_fmadd_ps(_mm_set1_ps(dx * _cvtsh_ss(w[b].dmin)), _mm_cvtepi32_ps(mprod), acc_min);
  }
  return hsum128(acc) - hsum128(acc_min);
}

}  // namespace zen::kernels::kq_avx512
