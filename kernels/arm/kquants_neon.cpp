// NEON (aarch64) K-quant kernels: the Q8_K activation quantizer and the Q4_K and Q6_K dot
// products (SDOT when the compiler targets the dotprod extension, widening multiplies
// otherwise). Q2_K, Q3_K and Q5_K stay on the scalar reference. Internal linkage and
// intrinsics only, like the x86 files.
#include <cstdint>
#include <cstring>

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

float vec_dot_q4_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ4_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  float sum = 0.f, sum_min = 0.f;
  for (int64_t b = 0; b < n / QK_K; ++b) {
    // 6-bit scales and mins: bytes 0..7 of sm are the scales, 8..15 the mins
    uint32_t a[3], u[4];
    std::memcpy(a, w[b].scales, 12);
    u[0] = a[0] & 0x3f3f3f3fu;
    u[1] = (a[2] & 0x0f0f0f0fu) | ((a[0] >> 2) & 0x30303030u);
    u[2] = a[1] & 0x3f3f3f3fu;
    u[3] = ((a[2] >> 4) & 0x0f0f0f0fu) | ((a[1] >> 2) & 0x30303030u);
    uint8_t sm[16];
    std::memcpy(sm, u, 16);
    // mins against the sums of each sub-block's 32 activations (pairs of bsums)
    const int16x8_t bs = vpaddq_s16(vld1q_s16(x[b].bsums), vld1q_s16(x[b].bsums + 8));
    const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
    const int32_t msum = vaddvq_s32(vaddq_s32(vmull_s16(vget_low_s16(mins), vget_low_s16(bs)),
                                              vmull_s16(vget_high_s16(mins), vget_high_s16(bs))));
    int32_t isum = 0;
    for (int j = 0; j < 4; ++j) {  // sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
      const uint8x16_t q0 = vld1q_u8(w[b].qs + 32 * j), q1 = vld1q_u8(w[b].qs + 32 * j + 16);
      const int8_t* xs = x[b].qs + 64 * j;
      int32x4_t lo = dot_s8(vdupq_n_s32(0), vreinterpretq_s8_u8(vandq_u8(q0, m4)), vld1q_s8(xs));
      lo = dot_s8(lo, vreinterpretq_s8_u8(vandq_u8(q1, m4)), vld1q_s8(xs + 16));
      int32x4_t hi = dot_s8(vdupq_n_s32(0), vreinterpretq_s8_u8(vshrq_n_u8(q0, 4)), vld1q_s8(xs + 32));
      hi = dot_s8(hi, vreinterpretq_s8_u8(vshrq_n_u8(q1, 4)), vld1q_s8(xs + 48));
      isum += sm[2 * j] * vaddvq_s32(lo) + sm[2 * j + 1] * vaddvq_s32(hi);
    }
    sum += x[b].d * neon_half_to_float(w[b].d) * static_cast<float>(isum);
    sum_min += x[b].d * neon_half_to_float(w[b].dmin) * static_cast<float>(msum);
  }
  return sum - sum_min;
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
  entry(t, DType::Q4_K).vec_dot = vec_dot_q4_K;
  entry(t, DType::Q6_K).vec_dot = vec_dot_q6_K;
}

}  // namespace zen::kernels
