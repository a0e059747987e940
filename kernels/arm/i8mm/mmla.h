// SMMLA building blocks shared by the i8mm tile kernels (kernels/arm/i8mm/*.cpp only: they
// need -march=...+i8mm). SMMLA multiplies a 2x8 int8 matrix by an 8x2 one: the four dot
// products of two weight rows with two activation rows over 8 elements, as lanes
// (w0.x0, w0.x1, w1.x0, w1.x1).
#pragma once
#include <arm_neon.h>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

// Two 16-lane vectors of rows r0 and r1 -> the SMMLA operands for elements 0..7 and 8..15.
inline void pair_rows(int8x16_t r0, int8x16_t r1, int8x16_t& first, int8x16_t& second) {
  const int64x2_t a = vreinterpretq_s64_s8(r0), b = vreinterpretq_s64_s8(r1);
  first = vreinterpretq_s8_s64(vzip1q_s64(a, b));
  second = vreinterpretq_s8_s64(vzip2q_s64(a, b));
}

// Operands of one block for a pair of rows: op[0..3] cover elements 0..7, 8..15, 16..23, 24..31.
struct BlockPair {
  int8x16_t op[4];
  BlockPair(int8x16_t lo0, int8x16_t hi0, int8x16_t lo1, int8x16_t hi1) {
    pair_rows(lo0, lo1, op[0], op[1]);
    pair_rows(hi0, hi1, op[2], op[3]);
  }
};

inline int32x4_t mmla_block(const BlockPair& w, const BlockPair& x) {
  int32x4_t acc = vmmlaq_s32(vdupq_n_s32(0), w.op[0], x.op[0]);
  acc = vmmlaq_s32(acc, w.op[1], x.op[1]);
  acc = vmmlaq_s32(acc, w.op[2], x.op[2]);
  return vmmlaq_s32(acc, w.op[3], x.op[3]);
}

inline void set_exact_gemm(OpsTable& t, DType type, GemmFn fn) {
  entry(t, type).gemm = fn;
  entry(t, type).gemm_exact = true;  // every tile repeats vec_dot's steps
}

}  // namespace
}  // namespace zen::kernels
