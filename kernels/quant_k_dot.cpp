// Scalar reference dot products of a K-quant weight row with a Q8_K activation row.
// Per super-block the products are summed exactly in integers (per sub-block, times the
// integer sub-block scale), then scaled once by d_w * d_x; formats with mins subtract
// dmin_w * d_x * sum(min_j * bsum_j) using the activation's precomputed 16-element sums.
#include "kernels/half.h"
#include "kernels/quant_k.h"

namespace zen::kernels::kq {
namespace {

// Sum of q[l] * x[l] over n elements.
template <typename Q>
int32_t idot(const Q* q, const int8_t* x, int n) {
  int32_t s = 0;
  for (int l = 0; l < n; ++l) s += static_cast<int32_t>(q[l]) * x[l];
  return s;
}

// Q4_K and Q5_K share the super-block arithmetic: 8 sub-blocks of 32 levels, each with a 6-bit
// scale and min; levels(block, j, q) writes the 32 levels of sub-block j.
template <typename Block, typename Levels>
float dot_k4(int64_t n, const Block* w, const BlockQ8_K* x, Levels levels) {
  float sum = 0.f, sum_min = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m, q[32];
      scale_min_k4(j, w[b].scales, &sc, &m);
      levels(w[b], j, q);
      isum += sc * idot(q, x[b].qs + 32 * j, 32);
      msum += m * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
    }
    sum += x[b].d * fp16_to_fp32(w[b].d) * static_cast<float>(isum);
    sum_min += x[b].d * fp16_to_fp32(w[b].dmin) * static_cast<float>(msum);
  }
  return sum - sum_min;
}

}  // namespace

float vec_dot_q2_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ2_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0.f, sum_min = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0, msum = 0;
    uint8_t q[QK_K];
    q2k_levels(w[b], q);
    for (int j = 0; j < 16; ++j) {
      isum += (w[b].scales[j] & 0x0f) * idot(q + 16 * j, x[b].qs + 16 * j, 16);
      msum += (w[b].scales[j] >> 4) * x[b].bsums[j];
    }
    sum += x[b].d * fp16_to_fp32(w[b].d) * static_cast<float>(isum);
    sum_min += x[b].d * fp16_to_fp32(w[b].dmin) * static_cast<float>(msum);
  }
  return sum - sum_min;
}

float vec_dot_q3_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ3_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int8_t sc[16], q[QK_K];
    q3k_scales(w[b].scales, sc);
    q3k_levels(w[b], q);
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) isum += sc[j] * idot(q + 16 * j, x[b].qs + 16 * j, 16);
    sum += x[b].d * fp16_to_fp32(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

float vec_dot_q4_K(int64_t n, const void* wv, const void* xv) {
  return dot_k4(n, static_cast<const BlockQ4_K*>(wv), static_cast<const BlockQ8_K*>(xv),
                [](const BlockQ4_K& blk, int j, uint8_t* q) {
                  for (int l = 0; l < 32; ++l) q[l] = (blk.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
                });
}

float vec_dot_q5_K(int64_t n, const void* wv, const void* xv) {
  return dot_k4(n, static_cast<const BlockQ5_K*>(wv), static_cast<const BlockQ8_K*>(xv),
                [](const BlockQ5_K& blk, int j, uint8_t* q) {
                  for (int l = 0; l < 32; ++l)
                    q[l] = static_cast<uint8_t>(((blk.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f) |
                                                (((blk.qh[l] >> j) & 1) << 4));
                });
}

float vec_dot_q6_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ6_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int8_t q[QK_K];
    q6k_levels(w[b], q);
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) isum += w[b].scales[j] * idot(q + 16 * j, x[b].qs + 16 * j, 16);
    sum += x[b].d * fp16_to_fp32(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

}  // namespace zen::kernels::kq
