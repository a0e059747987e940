// Q4_K pieces shared by the NEON dot product (kernels/arm/kquants_neon.cpp) and the i8mm tiles
// (kernels/arm/i8mm/), which must agree bit for bit. Internal linkage: each object compiled
// with its own target flags keeps its own copy.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/types.h"

namespace zen::kernels {
namespace {

// The 6-bit scales (sm[0..7]) and mins (sm[8..15]) of a Q4_K / Q5_K 12-byte scale field.
inline void k4_scales_mins(const uint8_t* packed, uint8_t sm[16]) {
  uint32_t a[3], u[4];
  std::memcpy(a, packed, 12);
  u[0] = a[0] & 0x3f3f3f3fu;
  u[1] = (a[2] & 0x0f0f0f0fu) | ((a[0] >> 2) & 0x30303030u);
  u[2] = a[1] & 0x3f3f3f3fu;
  u[3] = ((a[2] >> 4) & 0x0f0f0f0fu) | ((a[1] >> 2) & 0x30303030u);
  std::memcpy(sm, u, 16);
}

// sum over sub-blocks j of min_j * (sum of its 32 activations), from the Q8_K bsums (exact).
inline int32_t k4_min_sum(const uint8_t sm[16], const BlockQ8_K& x) {
  const int16x8_t bs = vpaddq_s16(vld1q_s16(x.bsums), vld1q_s16(x.bsums + 8));
  const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sm + 8)));
  return vaddvq_s32(vaddq_s32(vmull_s16(vget_low_s16(mins), vget_low_s16(bs)),
                              vmull_s16(vget_high_s16(mins), vget_high_s16(bs))));
}

// Levels of Q4_K sub-blocks 2j (q[0], q[1]: elements 0..15, 16..31) and 2j+1 (q[2], q[3]).
inline void q4k_levels(const BlockQ4_K& w, int j, uint8x16_t* q) {
  const uint8x16_t m4 = vdupq_n_u8(0x0f);
  const uint8x16_t q0 = vld1q_u8(w.qs + 32 * j), q1 = vld1q_u8(w.qs + 32 * j + 16);
  q[0] = vandq_u8(q0, m4);
  q[1] = vandq_u8(q1, m4);
  q[2] = vshrq_n_u8(q0, 4);
  q[3] = vshrq_n_u8(q1, 4);
}

}  // namespace
}  // namespace zen::kernels
