// K-quant -> float conversion (scalar reference). Element order inside a 256-element
// super-block is GGUF's; see the pack comments in quant_k_quantize.cpp and the level
// unpackers in quant_k_search.cpp.
#include "kernels/half.h"
#include "kernels/quant_k.h"

namespace zen::kernels::kq {

void dequantize_q2_K(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ2_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    uint8_t q[QK_K];
    q2k_levels(x[b], q);
    for (int e = 0; e < QK_K; ++e) {
      const uint8_t sc = x[b].scales[e / 16];
      *y++ = d * (sc & 0x0f) * q[e] - dmin * (sc >> 4);
    }
  }
}

void dequantize_q3_K(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ3_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    int8_t sc[16];
    q3k_scales(x[b].scales, sc);
    int8_t q[QK_K];
    q3k_levels(x[b], q);
    for (int e = 0; e < QK_K; ++e) *y++ = d * sc[e / 16] * q[e];
  }
}

void dequantize_q4_K(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {  // sub-block j: 32 elements, nibble j%2 of bytes 32*(j/2)..
      uint8_t sc, m;
      scale_min_k4(j, x[b].scales, &sc, &m);
      const float dj = d * sc, mj = dmin * m;
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) *y++ = dj * ((q[l] >> shift) & 0x0f) - mj;
    }
  }
}

void dequantize_q5_K(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ5_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {  // fifth bit of sub-block j is bit j of qh[l]
      uint8_t sc, m;
      scale_min_k4(j, x[b].scales, &sc, &m);
      const float dj = d * sc, mj = dmin * m;
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        const int v = ((q[l] >> shift) & 0x0f) | (((x[b].qh[l] >> j) & 1) << 4);
        *y++ = dj * v - mj;
      }
    }
  }
}

void dequantize_q6_K(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    int8_t q[QK_K];
    q6k_levels(x[b], q);
    for (int e = 0; e < QK_K; ++e) *y++ = d * x[b].scales[e / 16] * q[e];
  }
}

void dequantize_q8_K(const void* src, float* y, int64_t n) {
  const auto* x = static_cast<const BlockQ8_K*>(src);
  for (int64_t b = 0; b < n / QK_K; ++b)
    for (int e = 0; e < QK_K; ++e) *y++ = x[b].d * x[b].qs[e];
}

}  // namespace zen::kernels::kq
