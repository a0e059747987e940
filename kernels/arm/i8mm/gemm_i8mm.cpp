// NEON + dotprod + i8mm tile kernels: SMMLA multiplies a 2x8 int8 matrix by an 8x2 one, so one
// instruction gives the four dot products of two weight rows with two activation rows over 8
// elements. A 32-element block is four SMMLAs; per block each of the four (row, column) sums
// takes exactly the steps of vec_dot_legacy (kernels/arm/legacy_neon.h), so the tiles are
// bit-identical to vec_dot (gemm_exact).
#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/arm/i8mm/mmla.h"
#include "kernels/arm/legacy_neon.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

// Lanes (i0, j0), (i0, j1), (i1, j0), (i1, j1) from per-row values a0, a1 and per-column b0, b1.
inline float32x4_t rows_by_cols(float a0, float a1, float b0, float b1, bool multiply) {
  const float32x4_t a = {a0, a0, a1, a1}, b = {b0, b1, b0, b1};
  return multiply ? vmulq_f32(a, b) : a;
}

// Up to 2 weight rows x 4 activation rows (two column pairs); a missing row or column repeats
// the last real one and is not stored.
template <class W>
void tile_2x4(int64_t nb, const uint8_t* w0p, const uint8_t* w1p, const uint8_t* const xp[4], float* y[2][4],
              bool store_i1, const bool store_j[4]) {
  const auto* w0 = reinterpret_cast<const typename W::WB*>(w0p);
  const auto* w1 = reinterpret_cast<const typename W::WB*>(w1p);
  const typename W::XB* x[4];
  for (int j = 0; j < 4; ++j) x[j] = reinterpret_cast<const typename W::XB*>(xp[j]);
  float32x4_t s[2][2] = {{vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}, {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}};
  for (int64_t b = 0; b < nb; ++b) {
    int8x16_t lo0, hi0, lo1, hi1;
    W::levels(w0[b], lo0, hi0);
    W::levels(w1[b], lo1, hi1);
    const BlockPair wp(lo0, hi0, lo1, hi1);
    const float dw0 = neon_half_to_float(w0[b].d), dw1 = neon_half_to_float(w1[b].d);
    for (int p = 0; p < 2; ++p) {  // column pair (2p, 2p + 1)
      const auto& xa = x[2 * p][b];
      const auto& xb = x[2 * p + 1][b];
      const BlockPair xq(vld1q_s8(xa.qs), vld1q_s8(xa.qs + 16), vld1q_s8(xb.qs), vld1q_s8(xb.qs + 16));
      const float32x4_t d =
          rows_by_cols(dw0, dw1, neon_half_to_float(xa.d), neon_half_to_float(xb.d), true);
      float32x4_t& sp = s[p][b & 1];
      sp = vfmaq_f32(sp, vcvtq_f32_s32(mmla_block(wp, xq)), d);
      if constexpr (W::kOffset) {
        const float32x4_t m = rows_by_cols(neon_half_to_float(w0[b].m), neon_half_to_float(w1[b].m), 0, 0, false);
        const float32x4_t sx = {neon_half_to_float(xa.s), neon_half_to_float(xb.s), neon_half_to_float(xa.s),
                                neon_half_to_float(xb.s)};
        sp = vfmaq_f32(sp, m, sx);
      }
    }
  }
  for (int p = 0; p < 2; ++p) {
    float out[4];
    vst1q_f32(out, vaddq_f32(s[p][0], s[p][1]));
    for (int k = 0; k < 4; ++k) {
      const int i = k / 2, j = 2 * p + k % 2;
      if ((i == 0 || store_i1) && store_j[j]) *y[i][j] = out[k];
    }
  }
}

template <class W>
void gemm_legacy(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
                 float* y, size_t ldy) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t j0 = 0; j0 < nc; j0 += 4) {
    const uint8_t* xp[4];
    bool store_j[4];
    for (int j = 0; j < 4; ++j) {
      store_j[j] = j0 + j < nc;
      xp[j] = xb + static_cast<size_t>(std::min(j0 + j, nc - 1)) * x_stride;
    }
    for (int64_t i0 = 0; i0 < nr; i0 += 2) {
      const int64_t i1 = std::min(i0 + 1, nr - 1);
      float* yp[2][4];
      for (int j = 0; j < 4; ++j) {
        const size_t col = static_cast<size_t>(std::min(j0 + j, nc - 1)) * ldy;
        yp[0][j] = y + col + static_cast<size_t>(i0);
        yp[1][j] = y + col + static_cast<size_t>(i1);
      }
      tile_2x4<W>(n / 32, wb + static_cast<size_t>(i0) * w_stride, wb + static_cast<size_t>(i1) * w_stride, xp, yp,
                  i1 != i0, store_j);
    }
  }
}

}  // namespace

void fill_legacy_neon_i8mm(OpsTable& t) {
  set_exact_gemm(t, DType::Q8_0, gemm_legacy<WQ8<BlockQ8_0>>);
  set_exact_gemm(t, DType::Q8_1, gemm_legacy<WQ8<BlockQ8_1>>);
  set_exact_gemm(t, DType::Q4_0, gemm_legacy<WQ4_0>);
  set_exact_gemm(t, DType::Q4_1, gemm_legacy<WQ4_1>);
  set_exact_gemm(t, DType::Q5_0, gemm_legacy<WQ5_0>);
  set_exact_gemm(t, DType::Q5_1, gemm_legacy<WQ5_1>);
}

}  // namespace zen::kernels
