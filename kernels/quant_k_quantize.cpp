// Reference-quality quantizers float -> Q2_K .. Q6_K and the activation conversion float -> Q8_K.
// Bit-compatible with GGUF; the algorithms are those of llama-quantize without an importance
// matrix (ggml's *_ref quantizers), re-implemented here.
#include <cmath>
#include <cstring>

#include "kernels/half.h"
#include "kernels/quant_k.h"

namespace zen::kernels::kq {
namespace {

inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Packs 256 2-bit levels as Q2_K/Q3_K do: byte l of 32-byte group g holds elements
// 128g + l, +32, +64, +96 in bit pairs 0, 2, 4, 6.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int g = 0; g < 2; ++g)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* e = L + 128 * g + l;
      qs[32 * g + l] = static_cast<uint8_t>(e[0] | (e[32] << 2) | (e[64] << 4) | (e[96] << 6));
    }
}

// Scales and mins of 8 sub-blocks quantized to 6 bits and packed in the Q4_K/Q5_K layout.
// Returns the super-block d and dmin through the out parameters (as stored, fp16 bits).
void pack_scales_mins_k4(const float* scales, const float* mins, uint8_t* packed, uint16_t* d, uint16_t* dmin) {
  float max_scale = 0.f, max_min = 0.f;
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; ++j) {
    int ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    int lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      packed[j] = static_cast<uint8_t>(ls);
      packed[j + 4] = static_cast<uint8_t>(lm);
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0x0f) | ((lm & 0x0f) << 4));
      packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((ls >> 4) << 6));
      packed[j] = static_cast<uint8_t>(packed[j] | ((lm >> 4) << 6));
    }
  }
  *d = fp32_to_fp16(max_scale / 63.f);
  *dmin = fp32_to_fp16(max_min / 63.f);
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): levels L[256] and the packed scale field.
void quantize_k4_levels(const float* x, int nmax, float rmin, int nstep, uint8_t* L, uint8_t* packed,
                        uint16_t* d, uint16_t* dmin) {
  float scales[8], mins[8], weights[32];
  uint8_t aux[32];
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0.f;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = make_qkx2_quants(32, nmax, xs, weights, L + 32 * j, &mins[j], aux, rmin, 0.1f, nstep, false);
  }
  pack_scales_mins_k4(scales, mins, packed, d, dmin);
  // Re-quantize every element against the scales as they will be decoded.
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    scale_min_k4(j, packed, &sc, &m);
    const float dj = fp16_to_fp32(*d) * sc;
    if (!dj) continue;
    const float dm = fp16_to_fp32(*dmin) * m;
    for (int l = 0; l < 32; ++l) L[32 * j + l] = static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + l] + dm) / dj), 0, nmax));
  }
}

}  // namespace

void quantize_q2_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ2_K*>(dst);
  const float q4scale = 15.f;
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ2_K& blk = y[b];
    uint8_t L[QK_K], aux[16];
    float weights[16], scales[16], mins[16];
    float max_scale = 0.f, max_min = 0.f;
    for (int j = 0; j < 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(src[16 * j + l]);
      scales[j] = make_qkx2_quants(16, 3, src + 16 * j, weights, L + 16 * j, &mins[j], aux, -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    std::memset(blk.scales, 0, sizeof blk.scales);
    blk.d = fp32_to_fp16(0.f);
    blk.dmin = fp32_to_fp16(0.f);
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < 16; ++j) blk.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      blk.d = fp32_to_fp16(max_scale / q4scale);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < 16; ++j) blk.scales[j] = static_cast<uint8_t>(blk.scales[j] | (nearest_int(iscale * mins[j]) << 4));
      blk.dmin = fp32_to_fp16(max_min / q4scale);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(blk.d) * (blk.scales[j] & 0x0f);
      if (!d) continue;
      const float dm = fp16_to_fp32(blk.dmin) * (blk.scales[j] >> 4);
      for (int l = 0; l < 16; ++l) L[16 * j + l] = static_cast<uint8_t>(clamp_int(nearest_int((src[16 * j + l] + dm) / d), 0, 3));
    }
    pack_2bit(L, blk.qs);
  }
}

void quantize_q3_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ3_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ3_K& blk = y[b];
    int8_t L[QK_K];
    float scales[16];
    float max_scale = 0.f, amax = 0.f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = make_q3_quants(16, 4, src + 16 * j, L + 16 * j, true);
      const float a = std::fabs(scales[j]);
      if (a > amax) {
        amax = a;
        max_scale = scales[j];
      }
    }
    std::memset(blk.scales, 0, sizeof blk.scales);
    if (max_scale) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = clamp_int(static_cast<int8_t>(nearest_int(iscale * scales[j])), -32, 31) + 32;
        if (j < 8)
          blk.scales[j] = static_cast<uint8_t>(l & 0x0f);
        else
          blk.scales[j - 8] = static_cast<uint8_t>(blk.scales[j - 8] | ((l & 0x0f) << 4));
        blk.scales[8 + j % 4] = static_cast<uint8_t>(blk.scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
      }
      blk.d = fp32_to_fp16(1 / iscale);
    } else {
      blk.d = fp32_to_fp16(0.f);
    }
    int8_t sc[16];
    q3k_scales(blk.scales, sc);
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(blk.d) * sc[j];
      if (!d) continue;
      for (int l = 0; l < 16; ++l) L[16 * j + l] = static_cast<int8_t>(clamp_int(nearest_int(src[16 * j + l] / d), -4, 3) + 4);
    }
    // High bit of element j goes to bit j/32 of hmask[j % 32]; the low two bits are packed as Q2_K.
    std::memset(blk.hmask, 0, sizeof blk.hmask);
    uint8_t low[QK_K];
    for (int j = 0; j < QK_K; ++j) {
      int l = L[j];
      if (l > 3) {
        blk.hmask[j % 32] = static_cast<uint8_t>(blk.hmask[j % 32] | (1 << (j / 32)));
        l -= 4;
      }
      low[j] = static_cast<uint8_t>(l);
    }
    pack_2bit(low, blk.qs);
  }
}

void quantize_q4_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ4_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ4_K& blk = y[b];
    uint8_t L[QK_K];
    std::memset(blk.scales, 0, sizeof blk.scales);
    quantize_k4_levels(src, 15, -1.f, 20, L, blk.scales, &blk.d, &blk.dmin);
    // Byte l of 32-byte group g: element 64g + l in the low nibble, 64g + 32 + l in the high one.
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l)
        blk.qs[32 * g + l] = static_cast<uint8_t>(L[64 * g + l] | (L[64 * g + 32 + l] << 4));
  }
}

void quantize_q5_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ5_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ5_K& blk = y[b];
    uint8_t L[QK_K];
    std::memset(blk.scales, 0, sizeof blk.scales);
    quantize_k4_levels(src, 31, -0.5f, 15, L, blk.scales, &blk.d, &blk.dmin);
    // Low 4 bits as Q4_K; the fifth bit of element 64g + l goes to bit 2g of qh[l], of
    // element 64g + 32 + l to bit 2g + 1.
    std::memset(blk.qh, 0, sizeof blk.qh);
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l) {
        const int a = L[64 * g + l], c = L[64 * g + 32 + l];
        blk.qh[l] = static_cast<uint8_t>(blk.qh[l] | ((a >> 4) << (2 * g)) | ((c >> 4) << (2 * g + 1)));
        blk.qs[32 * g + l] = static_cast<uint8_t>((a & 0x0f) | ((c & 0x0f) << 4));
      }
  }
}

void quantize_q6_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ6_K& blk = y[b];
    int8_t L[QK_K];
    float scales[16];
    float max_scale = 0.f, max_abs = 0.f;
    for (int j = 0; j < 16; ++j) {
      scales[j] = make_qx_quants(16, 32, src + 16 * j, L + 16 * j, 1);
      const float a = std::fabs(scales[j]);
      if (a > max_abs) {
        max_abs = a;
        max_scale = scales[j];
      }
    }
    std::memset(&blk, 0, sizeof blk);
    if (max_abs < 1e-15f) continue;  // all (near) zero: d = 0 and every level 0
    const float iscale = -128.f / max_scale;
    blk.d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j) {
      const int s = nearest_int(iscale * scales[j]);
      blk.scales[j] = static_cast<int8_t>(s < 127 ? s : 127);
    }
    for (int j = 0; j < 16; ++j) {
      const float d = fp16_to_fp32(blk.d) * blk.scales[j];
      if (!d) continue;
      for (int l = 0; l < 16; ++l) L[16 * j + l] = static_cast<int8_t>(clamp_int(nearest_int(src[16 * j + l] / d), -32, 31) + 32);
    }
    // Per 128 elements: ql byte l holds elements l (low) and l+64 (high), ql byte 32+l holds
    // l+32 and l+96; qh byte l holds the top two bits of l, l+32, l+64, l+96.
    for (int h = 0; h < 2; ++h) {
      const int8_t* e = L + 128 * h;
      uint8_t* ql = blk.ql + 64 * h;
      uint8_t* qh = blk.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((e[l] & 0x0f) | ((e[l + 64] & 0x0f) << 4));
        ql[l + 32] = static_cast<uint8_t>((e[l + 32] & 0x0f) | ((e[l + 96] & 0x0f) << 4));
        qh[l] = static_cast<uint8_t>((e[l] >> 4) | ((e[l + 32] >> 4) << 2) | ((e[l + 64] >> 4) << 4) | ((e[l + 96] >> 4) << 6));
      }
    }
  }
}

void quantize_q8_K(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / QK_K; ++b, src += QK_K) {
    BlockQ8_K& blk = y[b];
    float max = 0.f;
    const float amax = signed_absmax(QK_K, src, &max);
    if (!amax) {
      std::memset(&blk, 0, sizeof blk);
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) {
      const int v = nearest_int(iscale * src[j]);
      blk.qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += blk.qs[16 * j + l];
      blk.bsums[j] = static_cast<int16_t>(sum);
    }
    blk.d = 1 / iscale;
  }
}

}  // namespace zen::kernels::kq
