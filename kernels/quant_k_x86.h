// Private to the K-quant x86 files: the per-ISA kernels, defined in kernels/x86/{avx2,avx512}/
// kquants*.cpp and gathered by fill_kquants_avx2 / fill_kquants_avx512. Declarations only (no
// inline code), so nothing here can be compiled twice with different ISA flags.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zen::kernels {

#define ZEN_KQUANT_ISA_DECLS                                                                      \
  void quantize_q8_K(const float* src, void* dst, int64_t n);                                     \
  float vec_dot_q2_K(int64_t n, const void* w, const void* x);                                    \
  float vec_dot_q3_K(int64_t n, const void* w, const void* x);                                    \
  float vec_dot_q4_K(int64_t n, const void* w, const void* x);                                    \
  float vec_dot_q5_K(int64_t n, const void* w, const void* x);                                    \
  float vec_dot_q6_K(int64_t n, const void* w, const void* x);                                    \
  void gemm_q4_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, \
                 size_t x_stride, float* y, size_t ldy);                                           \
  void gemm_q5_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, \
                 size_t x_stride, float* y, size_t ldy);                                           \
  void gemm_q6_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, \
                 size_t x_stride, float* y, size_t ldy);

namespace kq_avx2 { ZEN_KQUANT_ISA_DECLS }
namespace kq_avx512 {
ZEN_KQUANT_ISA_DECLS
void relayout_q8_K_lanes(void* x, int64_t n);  // Q4_K/Q5_K's activation order
float vec_dot_q4_K_lanes(int64_t n, const void* w, const void* x);
void gemm_q4_K_lanes(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x,
                     size_t x_stride, float* y, size_t ldy);
float vec_dot_q6_K_lanes(int64_t n, const void* w, const void* x);
void gemm_q6_K_lanes(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x,
                     size_t x_stride, float* y, size_t ldy);
void gemm_q4_K_x4(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x,
                  size_t x_stride, float* y, size_t ldy);
}

#undef ZEN_KQUANT_ISA_DECLS

}  // namespace zen::kernels
