// K-quant block layouts, scalar reference: scale-field decoders, level unpackers (element order
// inside a 256-element super-block as GGUF stores it) and the conversion to float.
#include "kernels/half.h"
#include "kernels/quant_k.h"

namespace zen::kernels::kq {

void scale_min_k4(int j, const uint8_t* packed, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

void q3k_scales(const uint8_t* packed, int8_t* out) {
  // Low 4 bits: bytes 0..7 (low nibble for scales 0..7, high nibble for 8..15).
  // High 2 bits: byte 8 + j%4, bit pair j/4.
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? (packed[j] & 0x0f) : (packed[j - 8] >> 4);
    const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

void q2k_levels(const BlockQ2_K& b, uint8_t* out) {
  // byte l of 32-byte group h holds elements 128h + 32s + l in bit pair s
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) out[128 * h + 32 * s + l] = (b.qs[32 * h + l] >> (2 * s)) & 3;
}

void q3k_levels(const BlockQ3_K& b, int8_t* out) {
  // low two bits as Q2_K; bit e/32 of hmask[e % 32] set means +0, clear means -4
  for (int h = 0; h < 2; ++h)
    for (int s = 0; s < 4; ++s)
      for (int l = 0; l < 32; ++l) {
        const int low = (b.qs[32 * h + l] >> (2 * s)) & 3;
        const int high = (b.hmask[l] >> (4 * h + s)) & 1;
        out[128 * h + 32 * s + l] = static_cast<int8_t>(low - (high ? 0 : 4));
      }
}

void q6k_levels(const BlockQ6_K& b, int8_t* out) {
  // per 128-element half h: ql byte l -> elements l (low nibble) and l+64 (high); ql byte 32+l ->
  // l+32 and l+96; qh byte l -> top two bits of l, l+32, l+64, l+96 in bit pairs 0..3
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* o = out + 128 * h;
    for (int l = 0; l < 32; ++l) {
      o[l] = static_cast<int8_t>(((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32);
      o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
      o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}


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
