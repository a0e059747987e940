// Scalar reference for the legacy block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1) and the
// plain float types (F32, F16, BF16). These define the semantics every SIMD version must match:
// the quantizers follow the GGUF reference rounding rules, the dot products sum integer products
// inside a block and scale once per block.
//
// Every function takes n, a multiple of the type's block size (the caller checks it).
#include <cmath>
#include <cstring>

#include "kernels/half.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

// Largest |x| over one block, and the signed value that has it (first one wins ties).
struct AbsMax {
  float amax = 0.0f;
  float max = 0.0f;
};
AbsMax abs_max(const float* x, int64_t n) {
  AbsMax r;
  for (int64_t j = 0; j < n; ++j) {
    const float a = std::fabs(x[j]);
    if (a > r.amax) {
      r.amax = a;
      r.max = x[j];
    }
  }
  return r;
}

struct MinMax {
  float min, max;
};
MinMax min_max(const float* x, int64_t n) {
  MinMax r{x[0], x[0]};
  for (int64_t j = 1; j < n; ++j) {
    if (x[j] < r.min) r.min = x[j];
    if (x[j] > r.max) r.max = x[j];
  }
  return r;
}

float inverse_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

// Quantized value of x*id + offset, truncated toward zero and capped at cap (never negative
// for in-range input: the reference formats map the block's extreme to 0 or cap).
uint8_t quant_trunc(float v, float offset, int cap) {
  const int q = static_cast<int8_t>(v + offset);
  return static_cast<uint8_t>(q < cap ? q : cap);
}

// Fifth bits of a Q5 block: bit j of the little-endian u32 is element j's bit 4.
uint32_t load_qh(const uint8_t qh[4]) {
  return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
         static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}
void store_qh(uint8_t qh[4], uint32_t v) {
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(v >> (8 * k));
}

// ---- Q8_0 / Q8_1: d = amax/127, q = round(x/d) (half away from zero) ----

// Quantizes one block of 32 into qs and returns the float d; sum gets the sum of the q's.
float quantize_block_q8(const float* x, int8_t* qs, int32_t& sum) {
  const float d = abs_max(x, QK8_0).amax / 127.0f;
  const float id = inverse_or_zero(d);
  sum = 0;
  for (int64_t j = 0; j < QK8_0; ++j) {
    qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    sum += qs[j];
  }
  return d;
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    int32_t sum;
    y[b].d = fp32_to_fp16(quantize_block_q8(src + b * QK8_0, y[b].qs, sum));
  }
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / QK8_1; ++b) {
    int32_t sum;
    const float d = quantize_block_q8(src + b * QK8_1, y[b].qs, sum);
    y[b].d = fp32_to_fp16(d);
    y[b].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int64_t j = 0; j < QK8_0; ++j) dst[b * QK8_0 + j] = x[b].qs[j] * d;
  }
}

void dequantize_q8_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ8_1*>(src);
  for (int64_t b = 0; b < n / QK8_1; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int64_t j = 0; j < QK8_1; ++j) dst[b * QK8_1 + j] = x[b].qs[j] * d;
  }
}

// ---- Q4_0: d = max/-8, q = min(15, trunc(x/d + 8.5)), value (q-8)*d ----

void quantize_q4_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_0*>(dst);
  for (int64_t b = 0; b < n / QK4_0; ++b) {
    const float* x = src + b * QK4_0;
    const float d = abs_max(x, QK4_0).max / -8.0f;
    const float id = inverse_or_zero(d);
    y[b].d = fp32_to_fp16(d);
    for (int64_t j = 0; j < QK4_0 / 2; ++j) {
      const uint8_t lo = quant_trunc(x[j] * id, 8.5f, 15);
      const uint8_t hi = quant_trunc(x[j + QK4_0 / 2] * id, 8.5f, 15);
      y[b].qs[j] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
}

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(src);
  for (int64_t b = 0; b < n / QK4_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    float* out = dst + b * QK4_0;
    for (int64_t j = 0; j < QK4_0 / 2; ++j) {
      out[j] = ((x[b].qs[j] & 0x0F) - 8) * d;
      out[j + QK4_0 / 2] = ((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

// ---- Q4_1: d = (max-min)/15, m = min, q = min(15, trunc((x-min)/d + 0.5)), value q*d + m ----

void quantize_q4_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_1*>(dst);
  for (int64_t b = 0; b < n / QK4_1; ++b) {
    const float* x = src + b * QK4_1;
    const MinMax mm = min_max(x, QK4_1);
    const float d = (mm.max - mm.min) / 15.0f;
    const float id = inverse_or_zero(d);
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mm.min);
    for (int64_t j = 0; j < QK4_1 / 2; ++j) {
      const uint8_t lo = quant_trunc((x[j] - mm.min) * id, 0.5f, 15);
      const uint8_t hi = quant_trunc((x[j + QK4_1 / 2] - mm.min) * id, 0.5f, 15);
      y[b].qs[j] = static_cast<uint8_t>(lo | hi << 4);
    }
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(src);
  for (int64_t b = 0; b < n / QK4_1; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    float* out = dst + b * QK4_1;
    for (int64_t j = 0; j < QK4_1 / 2; ++j) {
      out[j] = (x[b].qs[j] & 0x0F) * d + m;
      out[j + QK4_1 / 2] = (x[b].qs[j] >> 4) * d + m;
    }
  }
}

// ---- Q5_0 / Q5_1: as Q4 with 32 levels, the fifth bit of each element in qh ----

// Packs 32 five-bit values: low nibbles into qs (element j and j+16 share byte j), bit 4 into qh.
void pack_q5(const uint8_t q[32], uint8_t qs[16], uint8_t qh[4]) {
  uint32_t bits = 0;
  for (int j = 0; j < 16; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4);
    bits |= static_cast<uint32_t>(q[j] >> 4) << j;
    bits |= static_cast<uint32_t>(q[j + 16] >> 4) << (j + 16);
  }
  store_qh(qh, bits);
}

// Unpacks the 32 five-bit values of a Q5 block (element order).
void unpack_q5(const uint8_t qs[16], const uint8_t qh[4], uint8_t q[32]) {
  const uint32_t bits = load_qh(qh);
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<uint8_t>((qs[j] & 0x0F) | ((bits >> j) & 1u) << 4);
    q[j + 16] = static_cast<uint8_t>((qs[j] >> 4) | ((bits >> (j + 16)) & 1u) << 4);
  }
}

void quantize_q5_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_0*>(dst);
  for (int64_t b = 0; b < n / QK5_0; ++b) {
    const float* x = src + b * QK5_0;
    const float d = abs_max(x, QK5_0).max / -16.0f;
    const float id = inverse_or_zero(d);
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) q[j] = quant_trunc(x[j] * id, 16.5f, 31);
    y[b].d = fp32_to_fp16(d);
    pack_q5(q, y[b].qs, y[b].qh);
  }
}

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(src);
  for (int64_t b = 0; b < n / QK5_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    uint8_t q[32];
    unpack_q5(x[b].qs, x[b].qh, q);
    for (int j = 0; j < 32; ++j) dst[b * QK5_0 + j] = (q[j] - 16) * d;
  }
}

void quantize_q5_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_1*>(dst);
  for (int64_t b = 0; b < n / QK5_1; ++b) {
    const float* x = src + b * QK5_1;
    const MinMax mm = min_max(x, QK5_1);
    const float d = (mm.max - mm.min) / 31.0f;
    const float id = inverse_or_zero(d);
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) q[j] = quant_trunc((x[j] - mm.min) * id, 0.5f, 31);
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(mm.min);
    pack_q5(q, y[b].qs, y[b].qh);
  }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const BlockQ5_1*>(src);
  for (int64_t b = 0; b < n / QK5_1; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    uint8_t q[32];
    unpack_q5(x[b].qs, x[b].qh, q);
    for (int j = 0; j < 32; ++j) dst[b * QK5_1 + j] = q[j] * d + m;
  }
}

// ---- Dot products against Q8_0 / Q8_1 activations ----
// Each block: integer sum of q_w * q_x, then one float scale d_w * d_x; the offset formats
// (Q4_1, Q5_1) add m_w * s_x, where s_x = d_x * sum(q_x) is stored in the Q8_1 block.

float vec_dot_q4_0(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const BlockQ4_0*>(vw);
  const auto* x = static_cast<const BlockQ8_0*>(vx);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK4_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += ((w[b].qs[j] & 0x0F) - 8) * x[b].qs[j];
      isum += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
    }
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(isum);
  }
  return sum;
}

float vec_dot_q4_1(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const BlockQ4_1*>(vw);
  const auto* x = static_cast<const BlockQ8_1*>(vx);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK4_1; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += (w[b].qs[j] & 0x0F) * x[b].qs[j];
      isum += (w[b].qs[j] >> 4) * x[b].qs[j + 16];
    }
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(isum) +
           fp16_to_fp32(w[b].m) * fp16_to_fp32(x[b].s);
  }
  return sum;
}

float vec_dot_q5_0(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const BlockQ5_0*>(vw);
  const auto* x = static_cast<const BlockQ8_0*>(vx);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK5_0; ++b) {
    uint8_t q[32];
    unpack_q5(w[b].qs, w[b].qh, q);
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += (q[j] - 16) * x[b].qs[j];
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(isum);
  }
  return sum;
}

float vec_dot_q5_1(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const BlockQ5_1*>(vw);
  const auto* x = static_cast<const BlockQ8_1*>(vx);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK5_1; ++b) {
    uint8_t q[32];
    unpack_q5(w[b].qs, w[b].qh, q);
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += q[j] * x[b].qs[j];
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(isum) +
           fp16_to_fp32(w[b].m) * fp16_to_fp32(x[b].s);
  }
  return sum;
}

// Q8_0 . Q8_0 and Q8_1 . Q8_1 (the sums s play no part: neither side has an offset).
template <class Block>
float vec_dot_q8(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const Block*>(vw);
  const auto* x = static_cast<const Block*>(vx);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < 32; ++j) isum += w[b].qs[j] * x[b].qs[j];
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(isum);
  }
  return sum;
}

// ---- Plain floats. "Quantize" is the conversion from float; dot products accumulate in double.

void copy_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
void copy_to_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
float vec_dot_f32(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const float*>(vw);
  const auto* x = static_cast<const float*>(vx);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * x[i];
  return static_cast<float>(sum);
}

void quantize_f16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(src[i]);
}
void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(x[i]);
}
float vec_dot_f16(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* x = static_cast<const uint16_t*>(vx);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(fp16_to_fp32(w[i])) * fp16_to_fp32(x[i]);
  return static_cast<float>(sum);
}

void quantize_bf16(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(src[i]);
}
void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* x = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(x[i]);
}
float vec_dot_bf16(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* x = static_cast<const uint16_t*>(vx);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(w[i])) * bf16_to_fp32(x[i]);
  return static_cast<float>(sum);
}

}  // namespace

void fill_legacy_scalar(OpsTable& t) {
  entry(t, DType::F32) = {copy_to_f32, copy_f32, vec_dot_f32, nullptr};
  entry(t, DType::F16) = {dequantize_f16, quantize_f16, vec_dot_f16, nullptr};
  entry(t, DType::BF16) = {dequantize_bf16, quantize_bf16, vec_dot_bf16, nullptr};
  entry(t, DType::Q4_0) = {dequantize_q4_0, quantize_q4_0, vec_dot_q4_0, nullptr};
  entry(t, DType::Q4_1) = {dequantize_q4_1, quantize_q4_1, vec_dot_q4_1, nullptr};
  entry(t, DType::Q5_0) = {dequantize_q5_0, quantize_q5_0, vec_dot_q5_0, nullptr};
  entry(t, DType::Q5_1) = {dequantize_q5_1, quantize_q5_1, vec_dot_q5_1, nullptr};
  entry(t, DType::Q8_0) = {dequantize_q8_0, quantize_q8_0, vec_dot_q8<BlockQ8_0>, nullptr};
  entry(t, DType::Q8_1) = {dequantize_q8_1, quantize_q8_1, vec_dot_q8<BlockQ8_1>, nullptr};
}

}  // namespace zen::kernels
