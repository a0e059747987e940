// The x86 K-quant table overlays. They live in this baseline-compiled file, not in the AVX2 /
// AVX-512 files: dispatch builds every level's table at start-up, on any CPU, and code compiled
// with -mavx2 / -mavx512* (even a few pointer stores, which the compiler happily turns into
// VEX/EVEX vector moves) must not run before the CPU is known to support it.
#include "kernels/ops.h"
#include "kernels/quant_k_x86.h"

namespace zen::kernels {
#if defined(ZEN_ARCH_X86)

void fill_kquants_avx2(OpsTable& t) {
  entry(t, DType::Q8_K).quantize = kq_avx2::quantize_q8_K;
  entry(t, DType::Q2_K).vec_dot = kq_avx2::vec_dot_q2_K;
  entry(t, DType::Q3_K).vec_dot = kq_avx2::vec_dot_q3_K;
  entry(t, DType::Q4_K).vec_dot = kq_avx2::vec_dot_q4_K;
  entry(t, DType::Q5_K).vec_dot = kq_avx2::vec_dot_q5_K;
  entry(t, DType::Q6_K).vec_dot = kq_avx2::vec_dot_q6_K;
  entry(t, DType::Q4_K).gemm = kq_avx2::gemm_q4_K;
  entry(t, DType::Q5_K).gemm = kq_avx2::gemm_q5_K;
  entry(t, DType::Q6_K).gemm = kq_avx2::gemm_q6_K;
  for (DType d : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) entry(t, d).gemm_exact = true;
}

void fill_kquants_avx512(OpsTable& t) {
  entry(t, DType::Q8_K).quantize = kq_avx512::quantize_q8_K;
  entry(t, DType::Q2_K).vec_dot = kq_avx512::vec_dot_q2_K;
  entry(t, DType::Q3_K).vec_dot = kq_avx512::vec_dot_q3_K;
  entry(t, DType::Q4_K).vec_dot = kq_avx512::vec_dot_q4_K;
  entry(t, DType::Q5_K).vec_dot = kq_avx512::vec_dot_q5_K;
  entry(t, DType::Q6_K).vec_dot = kq_avx512::vec_dot_q6_K;
  entry(t, DType::Q4_K).gemm = kq_avx512::gemm_q4_K;
  entry(t, DType::Q5_K).gemm = kq_avx512::gemm_q5_K;
  entry(t, DType::Q6_K).gemm = kq_avx512::gemm_q6_K;
  for (DType d : {DType::Q4_K, DType::Q5_K, DType::Q6_K}) entry(t, d).gemm_exact = true;
  for (DType d : {DType::Q4_K, DType::Q5_K}) entry(t, d).relayout_x = kq_avx512::relayout_q8_K_lanes;
}

// Q4_K_LANES keeps the portable relayout_x (fill_lanes_scalar): once per activation row.
void fill_lanes_avx512(OpsTable& t) {
  TypeOps& e = entry(t, DType::Q4_K_LANES);
  e.vec_dot = kq_avx512::vec_dot_q4_K_lanes;
  e.gemm = kq_avx512::gemm_q4_K_lanes;
  e.gemm_exact = true;
  TypeOps& x4 = entry(t, DType::Q4_K_X4);
  x4.gemm = kq_avx512::gemm_q4_K_x4;
  x4.gemm_exact = true;  // each result bit-identical to Q4_K_LANES's vec_dot on the same row
  TypeOps& q6 = entry(t, DType::Q6_K_LANES);
  q6.vec_dot = kq_avx512::vec_dot_q6_K_lanes;
  q6.gemm = kq_avx512::gemm_q6_K_lanes;
  q6.gemm_exact = true;
}

#endif
}  // namespace zen::kernels
