// i8mm (SMMLA) tiles for Q4_K against Q8_K: 2 weight rows x 2 activation rows per tile. Per
// super-block the integer sums (sub-block dots times their 6-bit scales, mins times bsums) are
// exact, and the float steps are those of the NEON vec_dot (kernels/arm/kquants_neon.cpp), so
// every tile is bit-identical to vec_dot.
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/arm/i8mm/mmla.h"
#include "kernels/arm/kquants_neon.h"
#include "kernels/arm/neon_common.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

// One tile: rows w[0], w[1] and columns x[0], x[1]; out lanes (i0 j0, i0 j1, i1 j0, i1 j1).
float32x4_t tile_q4_K(int64_t nb, const BlockQ4_K* const w[2], const BlockQ8_K* const x[2]) {
  float32x4_t sum = vdupq_n_f32(0.f), sum_min = vdupq_n_f32(0.f);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t sm[2][16];
    k4_scales_mins(w[0][b].scales, sm[0]);
    k4_scales_mins(w[1][b].scales, sm[1]);
    int32x4_t isum = vdupq_n_s32(0);
    for (int j = 0; j < 4; ++j) {
      uint8x16_t q0[4], q1[4];
      q4k_levels(w[0][b], j, q0);
      q4k_levels(w[1][b], j, q1);
      for (int k = 0; k < 2; ++k) {  // sub-block 2j + k: levels q[2k], q[2k+1], activations 64j + 32k
        const BlockPair wp(vreinterpretq_s8_u8(q0[2 * k]), vreinterpretq_s8_u8(q0[2 * k + 1]),
                           vreinterpretq_s8_u8(q1[2 * k]), vreinterpretq_s8_u8(q1[2 * k + 1]));
        const int8_t* x0 = x[0][b].qs + 64 * j + 32 * k;
        const int8_t* x1 = x[1][b].qs + 64 * j + 32 * k;
        const BlockPair xp(vld1q_s8(x0), vld1q_s8(x0 + 16), vld1q_s8(x1), vld1q_s8(x1 + 16));
        const int32_t s0 = sm[0][2 * j + k], s1 = sm[1][2 * j + k];
        const int32x4_t sc = {s0, s0, s1, s1};
        isum = vmlaq_s32(isum, mmla_block(wp, xp), sc);
      }
    }
    const int32x4_t msum = {k4_min_sum(sm[0], x[0][b]), k4_min_sum(sm[0], x[1][b]), k4_min_sum(sm[1], x[0][b]),
                            k4_min_sum(sm[1], x[1][b])};
    const float xd0 = x[0][b].d, xd1 = x[1][b].d;
    const float wd0 = neon_half_to_float(w[0][b].d), wd1 = neon_half_to_float(w[1][b].d);
    const float wm0 = neon_half_to_float(w[0][b].dmin), wm1 = neon_half_to_float(w[1][b].dmin);
    const float32x4_t d = {xd0 * wd0, xd1 * wd0, xd0 * wd1, xd1 * wd1};
    const float32x4_t dm = {xd0 * wm0, xd1 * wm0, xd0 * wm1, xd1 * wm1};
    sum = vfmaq_f32(sum, d, vcvtq_f32_s32(isum));
    sum_min = vfmaq_f32(sum_min, dm, vcvtq_f32_s32(msum));
  }
  return vsubq_f32(sum, sum_min);
}

void gemm_q4_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
               float* y, size_t ldy) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t j0 = 0; j0 < nc; j0 += 2) {
    const int64_t j1 = std::min(j0 + 1, nc - 1);  // a missing column repeats the last, not stored
    const BlockQ8_K* xs[2] = {reinterpret_cast<const BlockQ8_K*>(xb + static_cast<size_t>(j0) * x_stride),
                              reinterpret_cast<const BlockQ8_K*>(xb + static_cast<size_t>(j1) * x_stride)};
    for (int64_t i0 = 0; i0 < nr; i0 += 2) {
      const int64_t i1 = std::min(i0 + 1, nr - 1);
      const BlockQ4_K* ws[2] = {reinterpret_cast<const BlockQ4_K*>(wb + static_cast<size_t>(i0) * w_stride),
                                reinterpret_cast<const BlockQ4_K*>(wb + static_cast<size_t>(i1) * w_stride)};
      float out[4];
      vst1q_f32(out, tile_q4_K(n / QK_K, ws, xs));
      y[static_cast<size_t>(j0) * ldy + static_cast<size_t>(i0)] = out[0];
      if (j1 != j0) y[static_cast<size_t>(j1) * ldy + static_cast<size_t>(i0)] = out[1];
      if (i1 != i0) y[static_cast<size_t>(j0) * ldy + static_cast<size_t>(i1)] = out[2];
      if (i1 != i0 && j1 != j0) y[static_cast<size_t>(j1) * ldy + static_cast<size_t>(i1)] = out[3];
    }
  }
}

}  // namespace

void fill_kquants_neon_i8mm(OpsTable& t) { set_exact_gemm(t, DType::Q4_K, gemm_q4_K); }

}  // namespace zen::kernels
