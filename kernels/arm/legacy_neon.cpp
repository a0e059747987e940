// NEON (aarch64) kernels for the legacy block formats: Q8_0/Q8_1 activation quantizers and the
// Q8_0, Q8_1, Q4_0 and Q5_0 dot products (SDOT when the compiler targets the dotprod extension,
// widening multiplies otherwise), plus the F32 dot product. Everything else stays scalar.
// Internal linkage and intrinsics only, like the x86 files.
#include <cstdint>

#include "kernels/arm/neon_common.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

// ---- Activation quantizers: d = amax / 127, q = round(x / d) with halves away from zero ----

float quantize_block_q8(const float* x, int8_t* qs, int32_t& sum) {
  float32x4_t v[8];
  float32x4_t amax = vdupq_n_f32(0.0f);
  for (int k = 0; k < 8; ++k) {
    v[k] = vld1q_f32(x + 4 * k);
    amax = vmaxq_f32(amax, vabsq_f32(v[k]));
  }
  const float d = vmaxvq_f32(amax) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int32x4_t total = vdupq_n_s32(0);
  for (int k = 0; k < 8; k += 2) {
    const int32x4_t a = vcvtaq_s32_f32(vmulq_n_f32(v[k], id));  // FCVTAS: ties away, as roundf
    const int32x4_t b = vcvtaq_s32_f32(vmulq_n_f32(v[k + 1], id));
    total = vaddq_s32(total, vaddq_s32(a, b));
    const int16x8_t h = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    vst1_s8(qs + 4 * k, vqmovn_s16(h));
  }
  sum = vaddvq_s32(total);
  return d;
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    int32_t sum;
    y[b].d = neon_float_to_half(quantize_block_q8(src + b * QK8_0, y[b].qs, sum));
  }
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / QK8_1; ++b) {
    int32_t sum;
    const float d = quantize_block_q8(src + b * QK8_1, y[b].qs, sum);
    y[b].d = neon_float_to_half(d);
    y[b].s = neon_float_to_half(d * static_cast<float>(sum));
  }
}

// ---- Dot products: per block an int32x4 of partial sums, scaled by d_w * d_x ----

template <class Block>
struct DotQ8 {
  using WB = Block;
  using XB = Block;
  static int32x4_t isum(const WB& w, const XB& x) {
    const int32x4_t a = dot_s8(vdupq_n_s32(0), vld1q_s8(w.qs), vld1q_s8(x.qs));
    return dot_s8(a, vld1q_s8(w.qs + 16), vld1q_s8(x.qs + 16));
  }
};

struct DotQ4_0 {
  using WB = BlockQ4_0;
  using XB = BlockQ8_0;
  static int32x4_t isum(const WB& w, const XB& x) {
    const uint8x16_t q = vld1q_u8(w.qs);
    const int8x16_t eight = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);  // elements 0..15
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);               // elements 16..31
    return dot_s8(dot_s8(vdupq_n_s32(0), lo, vld1q_s8(x.qs)), hi, vld1q_s8(x.qs + 16));
  }
};

struct DotQ5_0 {
  using WB = BlockQ5_0;
  using XB = BlockQ8_0;
  // Byte j = 0x10 where bit (base + j) of qh is set.
  static uint8x16_t fifth_bits(uint32_t qh, int base) {
    static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x8_t b0 = vdup_n_u8(static_cast<uint8_t>(qh >> base));
    const uint8x8_t b1 = vdup_n_u8(static_cast<uint8_t>(qh >> (base + 8)));
    const uint8x16_t sel = vtstq_u8(vcombine_u8(b0, b1), vld1q_u8(kBit));
    return vandq_u8(sel, vdupq_n_u8(0x10));
  }
  static int32x4_t isum(const WB& w, const XB& x) {
    const uint32_t qh = static_cast<uint32_t>(w.qh[0]) | static_cast<uint32_t>(w.qh[1]) << 8 |
                        static_cast<uint32_t>(w.qh[2]) << 16 | static_cast<uint32_t>(w.qh[3]) << 24;
    const uint8x16_t q = vld1q_u8(w.qs);
    const int8x16_t sixteen = vdupq_n_s8(16);
    const uint8x16_t lo = vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), fifth_bits(qh, 0));
    const uint8x16_t hi = vorrq_u8(vshrq_n_u8(q, 4), fifth_bits(qh, 16));
    const int8x16_t slo = vsubq_s8(vreinterpretq_s8_u8(lo), sixteen);
    const int8x16_t shi = vsubq_s8(vreinterpretq_s8_u8(hi), sixteen);
    return dot_s8(dot_s8(vdupq_n_s32(0), slo, vld1q_s8(x.qs)), shi, vld1q_s8(x.qs + 16));
  }
};

template <class K>
float vec_dot(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const typename K::WB*>(vw);
  const auto* x = static_cast<const typename K::XB*>(vx);
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  const int64_t nb = n / 32;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(K::isum(w[b], x[b])), neon_half_to_float(w[b].d) * neon_half_to_float(x[b].d));
    acc1 = vmlaq_n_f32(acc1, vcvtq_f32_s32(K::isum(w[b + 1], x[b + 1])),
                       neon_half_to_float(w[b + 1].d) * neon_half_to_float(x[b + 1].d));
  }
  if (b < nb)
    acc0 = vmlaq_n_f32(acc0, vcvtq_f32_s32(K::isum(w[b], x[b])), neon_half_to_float(w[b].d) * neon_half_to_float(x[b].d));
  return vaddvq_f32(vaddq_f32(acc0, acc1));
}

float vec_dot_f32(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const float*>(vw);
  const auto* x = static_cast<const float*>(vx);
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 4; ++k) acc[k] = vfmaq_f32(acc[k], vld1q_f32(w + i + 4 * k), vld1q_f32(x + i + 4 * k));
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(w + i), vld1q_f32(x + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

}  // namespace

void ZEN_NEON_FILL(legacy)(OpsTable& t) {
  entry(t, DType::Q8_0).quantize = quantize_q8_0;
  entry(t, DType::Q8_1).quantize = quantize_q8_1;
  entry(t, DType::Q8_0).vec_dot = vec_dot<DotQ8<BlockQ8_0>>;
  entry(t, DType::Q8_1).vec_dot = vec_dot<DotQ8<BlockQ8_1>>;
  entry(t, DType::Q4_0).vec_dot = vec_dot<DotQ4_0>;
  entry(t, DType::Q5_0).vec_dot = vec_dot<DotQ5_0>;
  entry(t, DType::F32).vec_dot = vec_dot_f32;
}

}  // namespace zen::kernels
