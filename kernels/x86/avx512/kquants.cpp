// AVX-512 (F/BW/VL/DQ/VNNI) K-quant kernels, part 1: the Q8_K activation quantizer and the
// decode hot path (Q4_K and Q6_K dot products, and those of their load-time layouts Q4_K_LANES
// and Q6_K_LANES, kernels/quant_k_lanes.cpp). Q2_K/Q3_K/Q5_K are in kquants_low.cpp, the
// gemm tiles in kquants_gemm.cpp; the table entries are set in kernels/quant_k_x86.cpp.
//
// Q4_K (and Q5_K) read activations in the lane-aligned layout (relayout_q8_K_lanes; see
// kernels/quant_k_avx512.h): 8 products per 32-bit lane (VNNI vpdpbusd), both 128-element
// groups packed to 16 bits, one vpdpwssd per super-block for the sub-block scales. Q6_K keeps
// plain Q8_K order and handles 128 weights per step (dot_pair).
//
// ODR safety: compiled with AVX-512 flags; no inline or template functions shared with other
// files are instantiated here (helpers are in an anonymous namespace, fp16 via _cvtsh_ss).
#include <cstring>

#include "kernels/quant_k_avx512.h"
#include "kernels/quant_k_x86.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx512 {

void quantize_q8_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ8_K& blk = y[b];
    __m512 vmax = _mm512_setzero_ps();
    for (int i = 0; i < QK_K; i += 16) vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_loadu_ps(src + i)));
    const float amax = _mm512_reduce_max_ps(vmax);
    if (amax == 0.f) {
      std::memset(&blk, 0, sizeof blk);
      continue;
    }
    const float max = first_with_magnitude(src, amax);
    const float iscale = -127.f / max;
    const __m512 vs = _mm512_set1_ps(iscale);
    const __m512i v127 = _mm512_set1_epi32(127);
    for (int g = 0; g < 16; ++g) {  // group g: 16 values -> 16 int8 and bsums[g]
      const __m512i v = _mm512_min_epi32(v127, _mm512_cvtps_epi32(_mm512_mul_ps(vs, _mm512_loadu_ps(src + 16 * g))));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(blk.qs + 16 * g), _mm512_cvtsepi32_epi8(v));
      blk.bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(v));
    }
    blk.d = 1 / iscale;
  }
}

void relayout_q8_K_lanes(void* x, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(x);
  for (int64_t b = 0; b < n / QK_K; ++b) relayout_lanes_block(y[b].qs, y[b].bsums);
}

// x in the lane-aligned layout (relayout_q8_K_lanes). Per super-block the integer sums fold
// to 4 lanes; the scale term and the mins term have a 4-lane accumulator each, updated as the
// gemm tiles update each of their rows (bit-identical results).
float vec_dot_q4_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  __m128 acc = _mm_setzero_ps(), acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m128i sm = k4_scales_mins(w[b].scales);
    // mins: sum over sub-blocks j of m_j * (sum of the 32 activations of j)
    const __m128i mprod = _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)), load128(x[b].bsums));
    const LanePair v[2] = {q4_lane_levels(w[b].qs, 0), q4_lane_levels(w[b].qs, 1)};
    const __m128i sumi = fold4(dot_lanes(v, x[b].qs, lane_scales(sm)));
    acc = _mm_fmadd_ps(_mm_set1_ps(dx * _cvtsh_ss(w[b].d)), _mm_cvtepi32_ps(sumi), acc);
    acc_min = _mm_fmadd_ps(_mm_set1_ps(dx * _cvtsh_ss(w[b].dmin)), _mm_cvtepi32_ps(mprod), acc_min);
  }
  return hsum128(acc) - hsum128(acc_min);
}

// Q4_K_LANES (kernels/quant_k_lanes.cpp), activations in relayout_q8_K_lanes16's order. Two
// super-blocks per step: their integer sums share one vpackssdw + vpdpwssd (pair_scales),
// fold to 4 lanes (b, b, b+1, b+1), and so do their mins terms (min_pairs); each lane then
// takes dx * (d * sums - dmin * mins) in one accumulator. The gemm tiles update each row's 4
// lanes the same way (bit-identical results).
float vec_dot_q4_K_lanes(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const int64_t nb = n / QK_K;
  __m128 acc = _mm_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const bool pair = b + 1 < nb;
    const __m128i sm0 = k4_scales_mins(w[b].scales);
    const __m128i sm1 = pair ? k4_scales_mins(w[b + 1].scales) : _mm_setzero_si128();
    const __m512i t0 = lanes16_sums(lanes16_levels(w[b].qs), x[b].qs);
    const __m512i t1 = pair ? lanes16_sums(lanes16_levels(w[b + 1].qs), x[b + 1].qs) : _mm512_setzero_si512();
    const __m128i sumi = fold4(_mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_packs_epi32(t0, t1), pair_scales(sm0, sm1)));
    const MinPairs m = min_pairs(_mm_cvtepu8_epi16(_mm_srli_si128(sm0, 8)), _mm_cvtepu8_epi16(_mm_srli_si128(sm1, 8)));
    const MinPairs bs = min_pairs(load128(x[b].bsums), pair ? load128(x[b + 1].bsums) : _mm_setzero_si128());
    const __m128i summ = _mm_dpwssd_epi32(_mm_madd_epi16(m.lo, bs.lo), m.hi, bs.hi);
    const float d0 = _cvtsh_ss(w[b].d), d1 = pair ? _cvtsh_ss(w[b + 1].d) : 0.f;
    const float m0 = _cvtsh_ss(w[b].dmin), m1 = pair ? _cvtsh_ss(w[b + 1].dmin) : 0.f;
    const float x0 = x[b].d, x1 = pair ? x[b + 1].d : 0.f;
    const __m128 t = _mm_fmsub_ps(_mm_set_ps(d1, d1, d0, d0), _mm_cvtepi32_ps(sumi),
                                  _mm_mul_ps(_mm_set_ps(m1, m1, m0, m0), _mm_cvtepi32_ps(summ)));
    acc = _mm_fmadd_ps(_mm_set_ps(x1, x1, x0, x0), t, acc);
  }
  return hsum128(acc) - 0.f;  // the tiles' store_rows order, with no separate mins term
}

// Q6_K_LANES, activations in relayout_q8_K_q6lanes's order: per super-block 4 vpdpbusd, the
// offset and the scales in 32 bits, a fold to 4 lanes and one fma; the gemm tiles update each
// row's 4 lanes the same way (bit-identical results).
float vec_dot_q6_K_lanes(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ6_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  __m128 acc = _mm_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const __m512i sc32 = _mm512_cvtepi8_epi32(load128(w[b].scales));
    const __m512i p = q6_lanes_scaled(q6_lanes_levels(w[b].ql, w[b].qh), x[b].qs, q6_offsets(x[b].bsums), sc32);
    acc = _mm_fmadd_ps(_mm_set1_ps(x[b].d * _cvtsh_ss(w[b].d)), _mm_cvtepi32_ps(fold4(p)), acc);
  }
  return hsum128(acc) - 0.f;  // the tiles' store_rows order, with no mins term
}

float vec_dot_q6_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ6_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const __m512 d = _mm512_set1_ps(x[b].d * _cvtsh_ss(w[b].d));
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales)));
    const __m512i sc = _mm512_zextsi256_si512(sc16);
    // Levels are stored as q + 32: subtract 32 * sum_j sc_j * bsum_j.
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, load256(x[b].bsums)), 5);
    __m512i sumi = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(offset));
    for (int h = 0; h < 2; ++h)  // 128 elements: ql[64h..64h+63], qh[32h..32h+31]
      sumi = dot_pair(sumi, q6_levels(w[b].ql, w[b].qh, h, 0), x[b].qs + 128 * h, q6_levels(w[b].ql, w[b].qh, h, 1),
                      x[b].qs + 128 * h + 64, scale_pairs_by_16(sc, h));
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace zen::kernels::kq_avx512
