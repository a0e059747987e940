// Block formats against Q8_0 / Q8_1 activations, shared by the NEON dot products
// (kernels/arm/legacy_neon.cpp) and the SMMLA tiles (kernels/arm/i8mm/): each weight format
// unpacks a block to two int8x16 vectors of levels (elements 0..15 and 16..31), and one block
// adds to a running sum in a fixed order, so that vec_dot and gemm agree bit for bit:
//   s = fma(float(isum), d_w * d_x, s);  s = fma(m_w, s_x, s)   (the second for Q4_1 / Q5_1)
// with blocks alternating between two sums (even, odd) that are added at the end.
#pragma once
#include <arm_neon.h>

#include <cmath>
#include <cstdint>

#include "kernels/arm/neon_common.h"
#include "kernels/types.h"

namespace zen::kernels {
namespace {

// Bytes 0x10 where bit (base + j) of qh is set, for j = 0..15.
inline uint8x16_t q5_fifth_bits(const uint8_t* qh_bytes, int base) {
  static const uint8_t kBit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x8_t b0 = vdup_n_u8(qh_bytes[base / 8]);
  const uint8x8_t b1 = vdup_n_u8(qh_bytes[base / 8 + 1]);
  return vandq_u8(vtstq_u8(vcombine_u8(b0, b1), vld1q_u8(kBit)), vdupq_n_u8(0x10));
}

inline void nibbles(const uint8_t* qs, uint8x16_t& lo, uint8x16_t& hi) {
  const uint8x16_t q = vld1q_u8(qs);
  lo = vandq_u8(q, vdupq_n_u8(0x0F));
  hi = vshrq_n_u8(q, 4);
}

template <class Block>
struct WQ8 {  // Q8_0 . Q8_0, Q8_1 . Q8_1: the sums s play no part
  using WB = Block;
  using XB = Block;
  static constexpr bool kOffset = false;
  static void levels(const WB& w, int8x16_t& lo, int8x16_t& hi) {
    lo = vld1q_s8(w.qs);
    hi = vld1q_s8(w.qs + 16);
  }
};

struct WQ4_0 {
  using WB = BlockQ4_0;
  using XB = BlockQ8_0;
  static constexpr bool kOffset = false;
  static void levels(const WB& w, int8x16_t& lo, int8x16_t& hi) {
    uint8x16_t l, h;
    nibbles(w.qs, l, h);
    lo = vsubq_s8(vreinterpretq_s8_u8(l), vdupq_n_s8(8));
    hi = vsubq_s8(vreinterpretq_s8_u8(h), vdupq_n_s8(8));
  }
};

struct WQ4_1 {
  using WB = BlockQ4_1;
  using XB = BlockQ8_1;
  static constexpr bool kOffset = true;
  static void levels(const WB& w, int8x16_t& lo, int8x16_t& hi) {
    uint8x16_t l, h;
    nibbles(w.qs, l, h);
    lo = vreinterpretq_s8_u8(l);
    hi = vreinterpretq_s8_u8(h);
  }
};

struct WQ5_0 {
  using WB = BlockQ5_0;
  using XB = BlockQ8_0;
  static constexpr bool kOffset = false;
  static void levels(const WB& w, int8x16_t& lo, int8x16_t& hi) {
    uint8x16_t l, h;
    nibbles(w.qs, l, h);
    lo = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l, q5_fifth_bits(w.qh, 0))), vdupq_n_s8(16));
    hi = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(h, q5_fifth_bits(w.qh, 16))), vdupq_n_s8(16));
  }
};

struct WQ5_1 {
  using WB = BlockQ5_1;
  using XB = BlockQ8_1;
  static constexpr bool kOffset = true;
  static void levels(const WB& w, int8x16_t& lo, int8x16_t& hi) {
    uint8x16_t l, h;
    nibbles(w.qs, l, h);
    lo = vreinterpretq_s8_u8(vorrq_u8(l, q5_fifth_bits(w.qh, 0)));
    hi = vreinterpretq_s8_u8(vorrq_u8(h, q5_fifth_bits(w.qh, 16)));
  }
};

template <class W>
float vec_dot_legacy(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const typename W::WB*>(vw);
  const auto* x = static_cast<const typename W::XB*>(vx);
  float s[2] = {0.0f, 0.0f};
  for (int64_t b = 0; b < n / 32; ++b) {
    int8x16_t lo, hi;
    W::levels(w[b], lo, hi);
    const int32x4_t acc = dot_s8(dot_s8(vdupq_n_s32(0), lo, vld1q_s8(x[b].qs)), hi, vld1q_s8(x[b].qs + 16));
    const float d = neon_half_to_float(w[b].d) * neon_half_to_float(x[b].d);
    float& sp = s[b & 1];
    sp = std::fma(static_cast<float>(vaddvq_s32(acc)), d, sp);
    if constexpr (W::kOffset) sp = std::fma(neon_half_to_float(w[b].m), neon_half_to_float(x[b].s), sp);
  }
  return s[0] + s[1];
}

}  // namespace
}  // namespace zen::kernels
