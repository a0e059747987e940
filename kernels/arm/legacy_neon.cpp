// NEON (aarch64) kernels for the legacy block formats: the Q8_0/Q8_1 activation quantizers, the
// dot products of every block format (SDOT when the compiler targets the dotprod extension,
// widening multiplies otherwise; kernels/arm/legacy_neon.h) and of F32, F16 and BF16.
// Conversions to and from float stay scalar. Internal linkage and intrinsics only.
#include <cstdint>

#include "kernels/arm/legacy_neon.h"
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

// ---- Plain floats: four float32x4 accumulators (16 interleaved partial sums) ----

// Loads 4 elements of a float row as float32x4.
struct F32Elems {
  using T = float;
  static float32x4_t load(const float* p) { return vld1q_f32(p); }
  static float one(float v) { return v; }
};
struct F16Elems {
  using T = uint16_t;
  static float32x4_t load(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static float one(uint16_t v) { return neon_half_to_float(v); }
};
struct BF16Elems {  // bf16 is the top half of an f32: widening is a shift
  using T = uint16_t;
  static float32x4_t load(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  static float one(uint16_t v) { return vgetq_lane_f32(vreinterpretq_f32_u32(vshll_n_u16(vdup_n_u16(v), 16)), 0); }
};

template <class E>
float vec_dot_float(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const typename E::T*>(vw);
  const auto* x = static_cast<const typename E::T*>(vx);
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 4; ++k) acc[k] = vfmaq_f32(acc[k], E::load(w + i + 4 * k), E::load(x + i + 4 * k));
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], E::load(w + i), E::load(x + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) sum += E::one(w[i]) * E::one(x[i]);
  return sum;
}

}  // namespace

void ZEN_NEON_FILL(legacy)(OpsTable& t) {
  entry(t, DType::Q8_0).quantize = quantize_q8_0;
  entry(t, DType::Q8_1).quantize = quantize_q8_1;
  entry(t, DType::Q8_0).vec_dot = vec_dot_legacy<WQ8<BlockQ8_0>>;
  entry(t, DType::Q8_1).vec_dot = vec_dot_legacy<WQ8<BlockQ8_1>>;
  entry(t, DType::Q4_0).vec_dot = vec_dot_legacy<WQ4_0>;
  entry(t, DType::Q4_1).vec_dot = vec_dot_legacy<WQ4_1>;
  entry(t, DType::Q5_0).vec_dot = vec_dot_legacy<WQ5_0>;
  entry(t, DType::Q5_1).vec_dot = vec_dot_legacy<WQ5_1>;
  entry(t, DType::F32).vec_dot = vec_dot_float<F32Elems>;
  entry(t, DType::F16).vec_dot = vec_dot_float<F16Elems>;
  entry(t, DType::BF16).vec_dot = vec_dot_float<BF16Elems>;
}

}  // namespace zen::kernels
