// K-quant formats (Q2_K..Q6_K, Q8_K), scalar reference semantics: bit layouts of hand-made
// blocks, Q8_K activation quantization against an independent statement of its rounding rules,
// round-trip quality on Gaussian data, and vec_dot against the dot of the dequantized rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace zen::kernels {
namespace {

const DType kWeightTypes[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

using testing::gaussian;

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())));
  ops(t, Isa::Scalar).quantize(x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(DType t, const void* q, size_t n) {
  std::vector<float> out(n);
  ops(t, Isa::Scalar).dequantize(q, out.data(), static_cast<int64_t>(n));
  return out;
}

// Deterministic level pattern that visits every level and differs between neighbours.
int level(int e, int n_levels) { return (e * 7 + e / 16 + 3) % n_levels; }

// ---- Layout checks on hand-made blocks (element order as GGUF stores it) ----

TEST(KQuantLayout, Q2_K) {
  BlockQ2_K b{};
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  int sc[16], mn[16];
  for (int j = 0; j < 16; ++j) {
    sc[j] = (j * 3 + 1) % 16;
    mn[j] = (j * 5 + 2) % 16;
    b.scales[j] = static_cast<uint8_t>(sc[j] | (mn[j] << 4));
  }
  // Two 128-element halves; in a half, byte l carries elements l, l+32, l+64, l+96 in bit pairs 0..3.
  for (int half = 0; half < 2; ++half)
    for (int pair = 0; pair < 4; ++pair)
      for (int l = 0; l < 32; ++l) {
        const int e = 128 * half + 32 * pair + l;
        b.qs[32 * half + l] = static_cast<uint8_t>(b.qs[32 * half + l] | (level(e, 4) << (2 * pair)));
      }
  const std::vector<float> out = dequantize(DType::Q2_K, &b, QK_K);
  for (int e = 0; e < QK_K; ++e) EXPECT_EQ(out[e], 0.5f * sc[e / 16] * level(e, 4) - 0.25f * mn[e / 16]) << e;
}

TEST(KQuantLayout, Q3_K) {
  BlockQ3_K b{};
  b.d = fp32_to_fp16(0.125f);
  int sc6[16];
  for (int j = 0; j < 16; ++j) {
    sc6[j] = (j * 19 + 5) % 64;  // stored value; the scale is sc6 - 32
    if (j < 8)
      b.scales[j] = static_cast<uint8_t>(b.scales[j] | (sc6[j] & 15));
    else
      b.scales[j - 8] = static_cast<uint8_t>(b.scales[j - 8] | ((sc6[j] & 15) << 4));
    b.scales[8 + j % 4] = static_cast<uint8_t>(b.scales[8 + j % 4] | ((sc6[j] >> 4) << (2 * (j / 4))));
  }
  // q in [-4, 3] stored as q + 4: low two bits as Q2_K, third bit in bit e/32 of hmask[e % 32].
  for (int e = 0; e < QK_K; ++e) {
    const int u = level(e, 8);
    b.qs[32 * (e / 128) + e % 32] = static_cast<uint8_t>(b.qs[32 * (e / 128) + e % 32] | ((u & 3) << (2 * ((e % 128) / 32))));
    b.hmask[e % 32] = static_cast<uint8_t>(b.hmask[e % 32] | ((u >> 2) << (e / 32)));
  }
  const std::vector<float> out = dequantize(DType::Q3_K, &b, QK_K);
  for (int e = 0; e < QK_K; ++e) EXPECT_EQ(out[e], 0.125f * (sc6[e / 16] - 32) * (level(e, 8) - 4)) << e;
}

// 6-bit scales and mins of Q4_K/Q5_K: j < 4 in the low 6 bits of bytes j (scale) and j+4 (min);
// j >= 4: low 4 bits in byte j+4 (scale low nibble, min high nibble), top 2 bits in the top
// bits of bytes j-4 (scale) and j (min).
void pack_k4(const int* sc, const int* mn, uint8_t* p) {
  for (int j = 0; j < 4; ++j) {
    p[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    p[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    p[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
}

const int kSc8[8] = {1, 2, 33, 63, 17, 5, 48, 31};
const int kMn8[8] = {0, 40, 3, 63, 20, 1, 62, 9};

TEST(KQuantLayout, Q4_K) {
  BlockQ4_K b{};
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  pack_k4(kSc8, kMn8, b.scales);
  // 64-element chunk c: byte l of qs[32c..] holds element 64c + l (low nibble) and 64c + 32 + l.
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b.qs[32 * c + l] = static_cast<uint8_t>(level(64 * c + l, 16) | (level(64 * c + 32 + l, 16) << 4));
  const std::vector<float> out = dequantize(DType::Q4_K, &b, QK_K);
  for (int e = 0; e < QK_K; ++e) EXPECT_EQ(out[e], 0.5f * kSc8[e / 32] * level(e, 16) - 0.25f * kMn8[e / 32]) << e;
}

TEST(KQuantLayout, Q5_K) {
  BlockQ5_K b{};
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  pack_k4(kSc8, kMn8, b.scales);
  // As Q4_K for the low 4 bits; the fifth bit of element 32j + l is bit j of qh[l].
  for (int e = 0; e < QK_K; ++e) {
    const int u = level(e, 32), c = e / 64, l = e % 32;
    b.qs[32 * c + l] = static_cast<uint8_t>(b.qs[32 * c + l] | ((u & 15) << (4 * ((e % 64) / 32))));
    b.qh[l] = static_cast<uint8_t>(b.qh[l] | ((u >> 4) << (e / 32)));
  }
  const std::vector<float> out = dequantize(DType::Q5_K, &b, QK_K);
  for (int e = 0; e < QK_K; ++e) EXPECT_EQ(out[e], 0.5f * kSc8[e / 32] * level(e, 32) - 0.25f * kMn8[e / 32]) << e;
}

TEST(KQuantLayout, Q6_K) {
  BlockQ6_K b{};
  b.d = fp32_to_fp16(0.0625f);
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j * 17 - 128);  // -128 .. 127
  // Per 128-element half: ql byte l = elements l (low nibble) and l+64 (high); ql byte 32+l =
  // l+32 and l+96; qh byte l = top two bits of l, l+32, l+64, l+96 in bit pairs 0..3.
  for (int half = 0; half < 2; ++half)
    for (int l = 0; l < 32; ++l) {
      const int e = 128 * half + l;
      const int u0 = level(e, 64), u1 = level(e + 32, 64), u2 = level(e + 64, 64), u3 = level(e + 96, 64);
      b.ql[64 * half + l] = static_cast<uint8_t>((u0 & 15) | ((u2 & 15) << 4));
      b.ql[64 * half + 32 + l] = static_cast<uint8_t>((u1 & 15) | ((u3 & 15) << 4));
      b.qh[32 * half + l] = static_cast<uint8_t>((u0 >> 4) | ((u1 >> 4) << 2) | ((u2 >> 4) << 4) | ((u3 >> 4) << 6));
    }
  const std::vector<float> out = dequantize(DType::Q6_K, &b, QK_K);
  for (int e = 0; e < QK_K; ++e) EXPECT_EQ(out[e], 0.0625f * b.scales[e / 16] * (level(e, 64) - 32)) << e;
}

TEST(KQuantLayout, Q8_K) {
  BlockQ8_K b{};
  b.d = 0.03125f;
  for (int e = 0; e < QK_K; ++e) b.qs[e] = static_cast<int8_t>(level(e, 255) - 127);
  const std::vector<float> out = dequantize(DType::Q8_K, &b, QK_K);
  for (int e = 0; e < QK_K; ++e) EXPECT_EQ(out[e], 0.03125f * (level(e, 255) - 127)) << e;
}

// ---- Q8_K activation quantization: the reference rule, stated independently ----

void expect_q8_K_reference(const float* x, const BlockQ8_K& b) {
  float amax = 0.f, max = 0.f;
  for (int j = 0; j < QK_K; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  if (amax == 0.f) {
    EXPECT_EQ(b.d, 0.f);
    for (int j = 0; j < QK_K; ++j) ASSERT_EQ(b.qs[j], 0);
    for (int j = 0; j < 16; ++j) ASSERT_EQ(b.bsums[j], 0);
    return;
  }
  const float iscale = -127.f / max;
  EXPECT_EQ(b.d, 1.f / iscale);
  for (int j = 0; j < QK_K; ++j) {
    const float v = std::nearbyint(iscale * x[j]);  // default rounding: to nearest, ties to even
    ASSERT_EQ(b.qs[j], static_cast<int>(std::fmin(127.f, v))) << j;
  }
  for (int j = 0; j < 16; ++j) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += b.qs[16 * j + l];
    ASSERT_EQ(b.bsums[j], s) << j;
  }
}

std::vector<float> q8_K_test_input() {
  std::vector<float> x = gaussian(QK_K * 6, 11);
  for (int j = 0; j < QK_K; ++j) x[QK_K + j] = 0.f;  // block 1: all zero
  x[2 * QK_K + 7] = -9.f;                               // block 2: negative max first ...
  x[2 * QK_K + 100] = 9.f;                              // ... then the same magnitude positive
  for (int j = 0; j < QK_K; ++j) x[3 * QK_K + j] = 0.5f * static_cast<float>(j % 5) - 1.f;  // exact ties
  x[4 * QK_K + 3] = 1e-30f;                             // block 4: one tiny value among others
  for (int j = 0; j < QK_K; ++j) x[5 * QK_K + j] = static_cast<float>(j) - 127.5f;
  return x;
}

TEST(KQuantQ8K, QuantizeFollowsReferenceRule) {
  const std::vector<float> x = q8_K_test_input();
  const std::vector<uint8_t> q = quantize(DType::Q8_K, x);
  const auto* blocks = reinterpret_cast<const BlockQ8_K*>(q.data());
  for (size_t b = 0; b < x.size() / QK_K; ++b) {
    SCOPED_TRACE(b);
    expect_q8_K_reference(x.data() + QK_K * b, blocks[b]);
  }
  // -9 comes before +9: max = -9, iscale = 127/9 > 0, so d > 0 (with +9 first it would be < 0).
  EXPECT_GT(blocks[2].d, 0.f);
  EXPECT_EQ(blocks[2].qs[7], -127);
  EXPECT_EQ(blocks[2].qs[100], 127);
}

// ---- Round-trip quality on Gaussian data (sigma = 1) ----

double round_trip_rmse(DType t, const std::vector<float>& x) {
  const std::vector<uint8_t> q = quantize(t, x);
  const std::vector<float> y = dequantize(t, q.data(), x.size());
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i) err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  return std::sqrt(err / static_cast<double>(x.size()));
}

TEST(KQuantQuality, RoundTripRmseOnGaussianData) {
  // Upper bounds, about 10% above the relative RMSE that llama-quantize's output has on the
  // Gaussian tensors of the synth test models: 0.296 (Q2_K), 0.151 (Q3_K), 0.0713 (Q4_K),
  // 0.0361 (Q5_K), 0.0178 (Q6_K). (Ours reproduce those files byte for byte:
  // tests/engine/test_kquant_files.cpp.)
  // Q8_K: round to nearest with step amax/127; amax of 256 normals is about 3 sigma, so the
  // error is about 3/127/sqrt(12) = 0.0068 sigma.
  const struct { DType t; double bound; } cases[] = {
      {DType::Q2_K, 0.33}, {DType::Q3_K, 0.17}, {DType::Q4_K, 0.077},
      {DType::Q5_K, 0.039}, {DType::Q6_K, 0.019}, {DType::Q8_K, 0.0075}};
  const std::vector<float> x = gaussian(QK_K * 256, 1234);
  for (const auto& c : cases) {
    const double rmse = round_trip_rmse(c.t, x);
    std::cout << "[ rmse     ] " << type_name(c.t) << " " << rmse << "\n";
    EXPECT_LT(rmse, c.bound) << type_name(c.t);
    EXPECT_GT(rmse, 0.0) << type_name(c.t);
  }
}

TEST(KQuantQuality, ZeroAndConstantBlocks) {
  for (DType t : kWeightTypes) {
    SCOPED_TRACE(type_name(t));
    std::vector<float> x(QK_K * 3, 0.f);
    for (int j = 0; j < QK_K; ++j) x[QK_K + j] = 0.75f;      // constant positive
    for (int j = 0; j < QK_K; ++j) x[2 * QK_K + j] = -2.5f;  // constant negative
    const std::vector<uint8_t> q = quantize(t, x);
    const std::vector<float> y = dequantize(t, q.data(), x.size());
    for (int j = 0; j < QK_K; ++j) ASSERT_EQ(y[j], 0.f) << j;
    for (size_t j = QK_K; j < x.size(); ++j) ASSERT_NEAR(y[j], x[j], 0.02 * std::fabs(x[j])) << j;
  }
}

// ---- vec_dot: the same math as the dot of the dequantized rows ----

TEST(KQuantVecDot, EqualsDotOfDequantizedRows) {
  const int64_t n = QK_K * 8;
  for (DType t : kWeightTypes) {
    SCOPED_TRACE(type_name(t));
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      const std::vector<float> wf = gaussian(n, seed), xf = gaussian(n, 100 + seed);
      const std::vector<uint8_t> w = quantize(t, wf), x = quantize(DType::Q8_K, xf);
      const std::vector<float> wd = dequantize(t, w.data(), n), xd = dequantize(DType::Q8_K, x.data(), n);
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < n; ++i) {
        ref += double(wd[i]) * xd[i];
        mag += std::fabs(double(wd[i]) * xd[i]);
      }
      const float got = ops(t, Isa::Scalar).vec_dot(n, w.data(), x.data());
      EXPECT_NEAR(got, ref, 2e-6 * mag) << seed;
    }
  }
}

}  // namespace
}  // namespace zen::kernels
