// NEON (aarch64) K-quant kernels: the Q8_K activation quantizer and the dot products of every
// K format (SDOT when the compiler targets the dotprod extension, widening multiplies
// otherwise). Per super-block the integer sums are exact; the float steps follow the scalar
// reference. Conversions to and from float stay scalar. Internal linkage and intrinsics only.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/arm/kquants_neon.h"
#include "kernels/arm/neon_common.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

void quantize_q8_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ8_K& blk = y[b];
    float32x4_t vmax = vdupq_n_f32(0.f);
    for (int i = 0; i < QK_K; i += 4) vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_f32(src + i)));
    const float amax = vmaxvq_f32(vmax);
    if (amax == 0.f) {
      std::memset(&blk, 0, sizeof blk);
      continue;
    }
    float max = 0.f;  // the signed value of the first element with the largest magnitude
    for (int i = 0; i < QK_K; ++i)
      if (__builtin_fabsf(src[i]) == amax) {
        max = src[i];
        break;
      }
    const float iscale = -127.f / max;
    const int32x4_t v127 = vdupq_n_s32(127);
    for (int g = 0; g < 16; ++g) {  // 16 values -> 16 int8 (round to nearest even) and bsums[g]
      int32x4_t q[4];
      for (int k = 0; k < 4; ++k) q[k] = vminq_s32(v127, vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(src + 16 * g + 4 * k), iscale)));
      const int16x8_t h0 = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
      const int16x8_t h1 = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
      vst1q_s8(blk.qs + 16 * g, vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1)));
      blk.bsums[g] = static_cast<int16_t>(vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]))));
    }
    blk.d = 1 / iscale;
  }
}

// The four 16-lane sums of d0..d3 (each lane a partial sum): lane g = sum over the lanes of dg.
inline int32x4_t lane_sums4(int32x4_t d0, int32x4_t d1, int32x4_t d2, int32x4_t d3) {
  return vpaddq_s32(vpaddq_s32(d0, d1), vpaddq_s32(d2, d3));
}

// Sum over 16 lanes of mins[i] * bsums[i] (int16 each: exact in int32).
inline int32_t dot_mins(int16x8_t m0, int16x8_t m1, int16x8_t b0, int16x8_t b1) {
  int32x4_t acc = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
  acc = vmlal_s16(acc, vget_high_s16(m0), vget_high_s16(b0));
  acc = vmlal_s16(acc, vget_low_s16(m1), vget_low_s16(b1));
  return vaddvq_s32(vmlal_s16(acc, vget_high_s16(m1), vget_high_s16(b1)));
}

// Q4_K and Q5_K: 8 sub-blocks of 32 levels with 6-bit scales and mins. levels(block, j, q)
// writes sub-blocks 2j (q[0], q[1]: elements 0..15, 16..31) and 2j+1 (q[2], q[3]).
template <class Block, class Levels>
float dot_k4(int64_t n, const void* wv, const void* xv, Levels levels) {
  const auto* w = static_cast<const Block*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0.f, sum_min = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    uint8_t sm[16];
    k4_scales_mins(w[b].scales, sm);
    const int32_t msum = k4_min_sum(sm, x[b]);
    int32x4_t d[8];
    for (int j = 0; j < 4; ++j) {
      uint8x16_t q[4];
      levels(w[b], j, q);
      const int8_t* xs = x[b].qs + 64 * j;
      d[2 * j] = dot_s8(dot_s8(vdupq_n_s32(0), vreinterpretq_s8_u8(q[0]), vld1q_s8(xs)), vreinterpretq_s8_u8(q[1]),
                        vld1q_s8(xs + 16));
      d[2 * j + 1] = dot_s8(dot_s8(vdupq_n_s32(0), vreinterpretq_s8_u8(q[2]), vld1q_s8(xs + 32)),
                            vreinterpretq_s8_u8(q[3]), vld1q_s8(xs + 48));
    }
    const int32x4_t sc = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vld1_u8(sm)))));
    const int32x4_t sc_hi = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(vmovl_u8(vld1_u8(sm)))));
    const int32_t isum = vaddvq_s32(vmlaq_s32(vmulq_s32(lane_sums4(d[0], d[1], d[2], d[3]), sc),
                                              lane_sums4(d[4], d[5], d[6], d[7]), sc_hi));
    // explicit fma: the i8mm tiles (kernels/arm/i8mm/) repeat these steps bit for bit
    sum = std::fma(x[b].d * neon_half_to_float(w[b].d), static_cast<float>(isum), sum);
    sum_min = std::fma(x[b].d * neon_half_to_float(w[b].dmin), static_cast<float>(msum), sum_min);
  }
  return sum - sum_min;
}

float vec_dot_q4_K(int64_t n, const void* wv, const void* xv) {
  return dot_k4<BlockQ4_K>(n, wv, xv, q4k_levels);
}

float vec_dot_q5_K(int64_t n, const void* wv, const void* xv) {
  // element l of sub-block s has its fifth bit in bit s of qh[l]
  return dot_k4<BlockQ5_K>(n, wv, xv, [](const BlockQ5_K& w, int j, uint8x16_t* q) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f), b16 = vdupq_n_u8(0x10);
    const uint8x16_t q0 = vld1q_u8(w.qs + 32 * j), q1 = vld1q_u8(w.qs + 32 * j + 16);
    const uint8x16_t h0 = vld1q_u8(w.qh), h1 = vld1q_u8(w.qh + 16);
    const uint8x16_t lo_bit = vdupq_n_u8(static_cast<uint8_t>(1u << (2 * j)));
    const uint8x16_t hi_bit = vdupq_n_u8(static_cast<uint8_t>(1u << (2 * j + 1)));
    q[0] = vorrq_u8(vandq_u8(q0, m4), vandq_u8(vtstq_u8(h0, lo_bit), b16));
    q[1] = vorrq_u8(vandq_u8(q1, m4), vandq_u8(vtstq_u8(h1, lo_bit), b16));
    q[2] = vorrq_u8(vshrq_n_u8(q0, 4), vandq_u8(vtstq_u8(h0, hi_bit), b16));
    q[3] = vorrq_u8(vshrq_n_u8(q1, 4), vandq_u8(vtstq_u8(h1, hi_bit), b16));
  });
}

// Q2_K and Q3_K: 16 groups of 16 levels. Group g = 8h + 2s + k holds elements 128h + 32s + 16k + l
// (l < 16), whose low two bits are bit pair s of qs[32h + 16k + l]. levels(block, h, s, q) writes
// groups 8h + 2s and 8h + 2s + 1; the result is the sum over g of scales[g] * dot_g.
template <class Block, class Levels>
int32_t dot_groups16(const Block& w, const BlockQ8_K& x, const int8_t* scales, Levels levels) {
  int32_t isum = 0;
  for (int h = 0; h < 2; ++h) {
    int32x4_t d[8];
    for (int s = 0; s < 4; ++s) {
      int8x16_t q[2];
      levels(w, h, s, q);
      const int8_t* xs = x.qs + 128 * h + 32 * s;
      d[2 * s] = dot_s8(vdupq_n_s32(0), q[0], vld1q_s8(xs));
      d[2 * s + 1] = dot_s8(vdupq_n_s32(0), q[1], vld1q_s8(xs + 16));
    }
    const int16x8_t sc = vmovl_s8(vld1_s8(scales + 8 * h));
    const int32x4_t g = vmulq_s32(lane_sums4(d[0], d[1], d[2], d[3]), vmovl_s16(vget_low_s16(sc)));
    isum += vaddvq_s32(vmlaq_s32(g, lane_sums4(d[4], d[5], d[6], d[7]), vmovl_s16(vget_high_s16(sc))));
  }
  return isum;
}

inline uint8x16_t q2_pair(const uint8_t* qs, int s) {
  return vandq_u8(vshlq_u8(vld1q_u8(qs), vdupq_n_s8(static_cast<int8_t>(-2 * s))), vdupq_n_u8(3));
}

float vec_dot_q2_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ2_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0.f, sum_min = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const uint8x16_t packed = vld1q_u8(w[b].scales);  // low nibble scale, high nibble min
    int8_t sc[16];
    vst1q_s8(sc, vreinterpretq_s8_u8(vandq_u8(packed, vdupq_n_u8(0x0f))));
    const uint8x16_t mins = vshrq_n_u8(packed, 4);
    const int32_t msum = dot_mins(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins))),
                                  vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(mins))), vld1q_s16(x[b].bsums),
                                  vld1q_s16(x[b].bsums + 8));
    const int32_t isum = dot_groups16(w[b], x[b], sc, [](const BlockQ2_K& blk, int h, int s, int8x16_t* q) {
      q[0] = vreinterpretq_s8_u8(q2_pair(blk.qs + 32 * h, s));
      q[1] = vreinterpretq_s8_u8(q2_pair(blk.qs + 32 * h + 16, s));
    });
    sum += x[b].d * neon_half_to_float(w[b].d) * static_cast<float>(isum);
    sum_min += x[b].d * neon_half_to_float(w[b].dmin) * static_cast<float>(msum);
  }
  return sum - sum_min;
}

float vec_dot_q3_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ3_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  float sum = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    // 16 6-bit scales minus 32: low 4 bits in bytes 0..7 (low nibble for 0..7, high for 8..15),
    // high 2 bits in byte 8 + j % 4, bit pair j / 4
    int8_t sc[16];
    const uint8_t* p = w[b].scales;
    for (int j = 0; j < 16; ++j) {
      const int lo = j < 8 ? (p[j] & 0x0f) : (p[j - 8] >> 4);
      sc[j] = static_cast<int8_t>((lo | (((p[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
    }
    // level = low two bits - 4 where bit 4h + s of hmask[l] is clear
    const int32_t isum = dot_groups16(w[b], x[b], sc, [](const BlockQ3_K& blk, int h, int s, int8x16_t* q) {
      const uint8x16_t bit = vdupq_n_u8(static_cast<uint8_t>(1u << (4 * h + s)));
      for (int k = 0; k < 2; ++k) {
        const uint8x16_t low = q2_pair(blk.qs + 32 * h + 16 * k, s);
        const uint8x16_t minus4 = vandq_u8(vceqq_u8(vandq_u8(vld1q_u8(blk.hmask + 16 * k), bit), vdupq_n_u8(0)),
                                           vdupq_n_u8(4));
        q[k] = vsubq_s8(vreinterpretq_s8_u8(low), vreinterpretq_s8_u8(minus4));
      }
    });
    sum += x[b].d * neon_half_to_float(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

float vec_dot_q6_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ6_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const uint8x16_t m4 = vdupq_n_u8(0x0f), m3 = vdupq_n_u8(3);
  const int8x16_t m32 = vdupq_n_s8(32);
  float sum = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    int32_t isum = 0;
    for (int h = 0; h < 2; ++h)
      for (int part = 0; part < 2; ++part) {  // bytes 16*part .. +15 of this half's qh / ql rows
        const uint8_t* ql = w[b].ql + 64 * h + 16 * part;
        const uint8x16_t qh = vld1q_u8(w[b].qh + 32 * h + 16 * part);
        const uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 32);
        uint8x16_t u[4];  // elements 128h + 32k + 16*part + i, stored as q + 32
        u[0] = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(qh, m3), 4));
        u[1] = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m3), 4));
        u[2] = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m3), 4));
        u[3] = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4));
        for (int k = 0; k < 4; ++k) {
          const int e = 128 * h + 32 * k + 16 * part;
          const int8x16_t q = vsubq_s8(vreinterpretq_s8_u8(u[k]), m32);
          isum += w[b].scales[e / 16] * vaddvq_s32(dot_s8(vdupq_n_s32(0), q, vld1q_s8(x[b].qs + e)));
        }
      }
    sum += x[b].d * neon_half_to_float(w[b].d) * static_cast<float>(isum);
  }
  return sum;
}

}  // namespace

void ZEN_NEON_FILL(kquants)(OpsTable& t) {
  entry(t, DType::Q8_K).quantize = quantize_q8_K;
  entry(t, DType::Q2_K).vec_dot = vec_dot_q2_K;
  entry(t, DType::Q3_K).vec_dot = vec_dot_q3_K;
  entry(t, DType::Q4_K).vec_dot = vec_dot_q4_K;
  entry(t, DType::Q5_K).vec_dot = vec_dot_q5_K;
  entry(t, DType::Q6_K).vec_dot = vec_dot_q6_K;
}

}  // namespace zen::kernels
