// Helpers shared by the NEON kernel files. Every file in kernels/arm/ is compiled twice, for
// armv8-a and for armv8.2-a+dotprod (kernels/CMakeLists.txt), so everything here has internal
// linkage: each object keeps its own copy, built with its own target flags.
#pragma once
#include <arm_neon.h>

#include <cstdint>

#include "kernels/ops.h"

// The fill function this object defines: fill_<family>_neon or fill_<family>_neon_dotprod.
#if defined(__ARM_FEATURE_DOTPROD)
#define ZEN_NEON_FILL(family) fill_##family##_neon_dotprod
#else
#define ZEN_NEON_FILL(family) fill_##family##_neon
#endif

namespace zen::kernels {
namespace {

inline float neon_half_to_float(uint16_t h) {
  return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

inline uint16_t neon_float_to_half(float f) {
  return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
}

// acc + sums of a[i] * b[i], four products per lane (exact for any int8 inputs): SDOT with
// dotprod, widening multiplies and pairwise adds otherwise. Which products land in which lane
// differs between the two, so callers only use the sum over the lanes.
inline int32x4_t dot_s8(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
  return vdotq_s32(acc, a, b);
#else
  const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
  const int16x8_t hi = vmull_s8(vget_high_s8(a), vget_high_s8(b));
  return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

}  // namespace
}  // namespace zen::kernels
