// Private to the K-quant scalar files (kernels/quant_k*.cpp): the reference quantizer searches
// and the per-type scalar kernels. Not included by any ISA-specific file (ODR safety).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/types.h"

namespace zen::kernels::kq {

// Round to nearest, ties to even, via the float magic number (valid for |v| < 2^22), as ggml does.
int nearest_int(float v);
// Largest |x[i]| over n values; *max_out receives the signed value of the first element with
// that magnitude (its sign decides the sign of the scale in the reference quantizers).
float signed_absmax(int n, const float* x, float* max_out);

// Signed symmetric search (ggml "make_qx_quants"): L[i] in [0, 2*nmax) holds q + nmax.
// rmse_type 1 weights the error by x^2 and tries 18 extra scales; returns the scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type);
// Signed search with iterative refinement (ggml "make_q3_quants"); L[i] in [0, 2*nmax).
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);
// Asymmetric scale+min weighted search (ggml "make_qkx2_quants"); L[i] in [0, nmax].
// Returns the scale; *neg_min receives -min (>= 0).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* neg_min, uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);

// 6-bit scale and min j (0..7) of a Q4_K/Q5_K 12-byte scale field.
void scale_min_k4(int j, const uint8_t* packed, uint8_t* scale, uint8_t* min);
// The 16 signed scales (already minus 32) of a Q3_K 12-byte scale field.
void q3k_scales(const uint8_t* packed, int8_t* out);

// The 256 levels of one super-block in element order: Q2_K in [0, 3], Q3_K in [-4, 3],
// Q6_K in [-32, 31].
void q2k_levels(const BlockQ2_K& b, uint8_t* out);
void q3k_levels(const BlockQ3_K& b, int8_t* out);
void q6k_levels(const BlockQ6_K& b, int8_t* out);

void dequantize_q2_K(const void* src, float* dst, int64_t n);
void dequantize_q3_K(const void* src, float* dst, int64_t n);
void dequantize_q4_K(const void* src, float* dst, int64_t n);
void dequantize_q5_K(const void* src, float* dst, int64_t n);
void dequantize_q6_K(const void* src, float* dst, int64_t n);
void dequantize_q8_K(const void* src, float* dst, int64_t n);

void quantize_q2_K(const float* src, void* dst, int64_t n);
void quantize_q3_K(const float* src, void* dst, int64_t n);
void quantize_q4_K(const float* src, void* dst, int64_t n);
void quantize_q5_K(const float* src, void* dst, int64_t n);
void quantize_q6_K(const float* src, void* dst, int64_t n);
void quantize_q8_K(const float* src, void* dst, int64_t n);

float vec_dot_q2_K(int64_t n, const void* w, const void* x);
float vec_dot_q3_K(int64_t n, const void* w, const void* x);
float vec_dot_q4_K(int64_t n, const void* w, const void* x);
float vec_dot_q5_K(int64_t n, const void* w, const void* x);
float vec_dot_q6_K(int64_t n, const void* w, const void* x);

}  // namespace zen::kernels::kq
