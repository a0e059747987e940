// AVX2 K-quant kernels, part 1: the Q8_K activation quantizer and the decode hot path (Q4_K
// and Q6_K dot products). Q2_K/Q3_K/Q5_K are in kquants_low.cpp, the gemm tiles in
// kquants_gemm.cpp; the table entries are set in kernels/quant_k_x86.cpp.
//
// ODR safety: this file is compiled with -mavx2 -mfma -mf16c. It defines nothing with vague
// linkage (no inline or template functions shared with other files): helpers live in an
// anonymous namespace and fp16 goes through the _cvtsh_ss intrinsic.
#include <cstring>

#include "kernels/quant_k_avx2.h"
#include "kernels/quant_k_x86.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx2 {

void quantize_q8_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  const __m256 sign = _mm256_set1_ps(-0.f);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ8_K& blk = y[b];
    __m256 vmax = _mm256_setzero_ps();
    for (int i = 0; i < QK_K; i += 8) vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, _mm256_loadu_ps(src + i)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    if (amax == 0.f) {
      std::memset(&blk, 0, sizeof blk);
      continue;
    }
    const float max = first_with_magnitude(src, amax);
    const float iscale = -127.f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i v127 = _mm256_set1_epi32(127);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m128i sums[4];
    for (int g = 0; g < 4; ++g) {  // 64 values -> 64 int8 and 4 sums of 16
      __m256i v[8];
      for (int k = 0; k < 8; ++k)
        v[k] = _mm256_min_epi32(v127, _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(src + 64 * g + 8 * k))));
      for (int h = 0; h < 2; ++h) {
        const __m256i a = _mm256_packs_epi32(v[4 * h], v[4 * h + 1]);
        const __m256i c = _mm256_packs_epi32(v[4 * h + 2], v[4 * h + 3]);
        const __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, c), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk.qs + 64 * g + 32 * h), q);
      }
      const __m256i h01 = _mm256_hadd_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
      const __m256i h23 = _mm256_hadd_epi32(_mm256_add_epi32(v[4], v[5]), _mm256_add_epi32(v[6], v[7]));
      const __m256i h = _mm256_hadd_epi32(h01, h23);
      sums[g] = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(blk.bsums), _mm_packs_epi32(sums[0], sums[1]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(blk.bsums + 8), _mm_packs_epi32(sums[2], sums[3]));
    blk.d = 1 / iscale;
  }
}

float vec_dot_q4_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m256 d = _mm256_set1_ps(dx * _cvtsh_ss(w[b].d));
    const __m128 dmin = _mm_set1_ps(dx * _cvtsh_ss(w[b].dmin));
    const __m256i sm = _mm256_cvtepu8_epi16(k4_scales_mins(w[b].scales));  // sc0..7 | m0..7 (int16)
    // mins: sum over sub-blocks j of m_j * (sum of the 32 activations of j)
    const __m128i mprod = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), bsums_by_32(x[b].bsums));
    acc_min = _mm_fmadd_ps(dmin, _mm_cvtepi32_ps(mprod), acc_min);

    const __m256i sc = _mm256_permute2x128_si256(sm, sm, 0x00);  // scales in both halves
    const uint8_t* q4 = w[b].qs;
    const int8_t* q8 = x[b].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {  // 64 elements: sub-blocks 2j (low nibbles) and 2j+1 (high)
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q4 + 32 * j));
      const __m256i lo = _mm256_and_si256(q, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 64 * j)));
      __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 64 * j + 32)));
      pl = _mm256_madd_epi16(pl, bcast_i16(sc, 2 * j));
      ph = _mm256_madd_epi16(ph, bcast_i16(sc, 2 * j + 1));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
  }
  return hsum_ps(acc) - hsum128(acc_min);
}

float vec_dot_q6_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ6_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const __m256 d = _mm256_set1_ps(x[b].d * _cvtsh_ss(w[b].d));
    const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales));
    // Levels are stored as q + 32: subtract 32 * sum_j sc_j * bsum_j at the end.
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].bsums));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), bs), 5);
    __m256i sumi = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {  // 128 elements: ql[64h..], qh[32h..]
      const int8_t* q8 = x[b].qs + 128 * h;
      __m256i q[4];
      q6_levels(w[b].ql, w[b].qh, h, q);
      for (int k = 0; k < 4; ++k) {  // 32 elements = sub-blocks 8h + 2k, 8h + 2k + 1
        const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + 32 * k)));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, pair_i8(sc8, 8 * h + 2 * k)));
      }
    }
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, offset)), acc);
  }
  return hsum_ps(acc);
}

}  // namespace zen::kernels::kq_avx2
