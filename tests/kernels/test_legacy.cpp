// Legacy block formats, scalar reference semantics: block layouts, quantization quality on
// Gaussian data (against an independent statement of the reference rounding rules), and
// vec_dot against the dot product of the dequantized vectors, for every supported ISA level.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

const DType kQuantTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1};
const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1};

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

std::vector<Isa> supported_levels() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x, Isa isa = Isa::Scalar) {
  std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())));
  ops(t, isa).quantize(x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

std::vector<float> dequantize(DType t, const std::vector<uint8_t>& q, size_t n, Isa isa = Isa::Scalar) {
  std::vector<float> out(n);
  ops(t, isa).dequantize(q.data(), out.data(), static_cast<int64_t>(n));
  return out;
}

// ---- Layout checks on hand-made blocks ----

TEST(LegacyLayout, Q4_0NibblesHoldElementsJAndJPlus16) {
  BlockQ4_0 b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  float out[32];
  ops(DType::Q4_0).dequantize(&b, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], (j - 8) * 0.5f) << j;
    EXPECT_EQ(out[j + 16], (7 - j) * 0.5f) << j;
  }
}

TEST(LegacyLayout, Q5_0FifthBitsAreLittleEndianU32) {
  BlockQ5_0 b{};
  b.d = fp32_to_fp16(1.0f);
  const uint32_t qh = 0x80010003u;  // elements 0, 1, 16 and 31 have bit 4 set
  std::memcpy(b.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = 0x00;
  float out[32];
  ops(DType::Q5_0).dequantize(&b, out, 32);
  for (int j = 0; j < 32; ++j) {
    const bool set = (qh >> j) & 1u;
    EXPECT_EQ(out[j], set ? 0.0f : -16.0f) << j;
  }
}

TEST(LegacyLayout, Q4_1AndQ5_1AddTheMinimum) {
  BlockQ5_1 b{};
  b.d = fp32_to_fp16(0.25f);
  b.m = fp32_to_fp16(-3.0f);
  b.qh[3] = 0x80;   // element 31: +16
  b.qs[15] = 0xF7;  // element 15: 7, element 31: 15
  float out[32];
  ops(DType::Q5_1).dequantize(&b, out, 32);
  EXPECT_EQ(out[0], -3.0f);
  EXPECT_EQ(out[15], -3.0f + 7 * 0.25f);
  EXPECT_EQ(out[31], -3.0f + 31 * 0.25f);
}

TEST(LegacyQuantize, Q8_1StoresScaledSum) {
  const std::vector<float> x = gaussian(64, 7);
  for (Isa isa : supported_levels()) {
    const std::vector<uint8_t> q = quantize(DType::Q8_1, x, isa);
    for (int b = 0; b < 2; ++b) {
      BlockQ8_1 blk;
      std::memcpy(&blk, q.data() + b * sizeof(BlockQ8_1), sizeof blk);
      int sum = 0, amax = 0;
      for (int8_t v : blk.qs) {
        sum += v;
        amax = std::max(amax, std::abs(static_cast<int>(v)));
      }
      EXPECT_EQ(amax, 127) << isa_name(isa);  // the block's largest |x| maps to 127
      float xmax = 0.0f;
      for (int j = 0; j < 32; ++j) xmax = std::max(xmax, std::fabs(x[b * 32 + j]));
      const float d = xmax / 127.0f;
      EXPECT_EQ(blk.d, fp32_to_fp16(d)) << isa_name(isa);
      EXPECT_EQ(blk.s, fp32_to_fp16(d * static_cast<float>(sum))) << isa_name(isa);
    }
  }
}

TEST(LegacyQuantize, ZeroBlocksStayZero) {
  const std::vector<float> x(64, 0.0f);
  for (DType t : kAllTypes) {
    for (Isa isa : supported_levels()) {
      const std::vector<float> back = dequantize(t, quantize(t, x, isa), x.size(), isa);
      for (float v : back) EXPECT_EQ(v, 0.0f) << type_name(t) << " " << isa_name(isa);
    }
  }
}

// ---- Quantization quality ----

// The reference rules, written out per element in double precision: scale from the block's
// extremes, stored as fp16; q = round-half-up of the scaled value, clamped to the code range.
std::vector<float> reference_fake_quant(DType t, const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float* v = &x[b * 32];
    float amax = 0, smax = 0, mn = v[0], mx = v[0];
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), smax = v[j];
      mn = std::min(mn, v[j]);
      mx = std::max(mx, v[j]);
    }
    double d = 0, m = 0;
    int lo = 0, hi = 0, zero = 0;
    switch (t) {
      case DType::Q4_0: d = smax / -8.0, lo = 0, hi = 15, zero = 8; break;
      case DType::Q5_0: d = smax / -16.0, lo = 0, hi = 31, zero = 16; break;
      case DType::Q4_1: d = (mx - mn) / 15.0, m = mn, hi = 15; break;
      case DType::Q5_1: d = (mx - mn) / 31.0, m = mn, hi = 31; break;
      default: d = amax / 127.0, lo = -127, hi = 127; break;  // Q8_0, Q8_1
    }
    const double dh = fp16_to_fp32(fp32_to_fp16(static_cast<float>(d)));
    const double mh = fp16_to_fp32(fp32_to_fp16(static_cast<float>(m)));
    for (int j = 0; j < 32; ++j) {
      long q = d == 0 ? zero : std::lround((v[j] - m) / d) + zero;
      q = std::clamp<long>(q, lo, hi);
      out[b * 32 + j] = static_cast<float>((q - zero) * dh + mh);
    }
  }
  return out;
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

TEST(LegacyQuantize, RoundTripErrorMatchesReferenceAlgorithm) {
  const float sigma = 0.7f;
  const std::vector<float> x = gaussian(32 * 4096, 42, sigma);
  for (DType t : kQuantTypes) {
    const double ours = rmse(x, dequantize(t, quantize(t, x), x.size())) / sigma;
    const double ref = rmse(x, reference_fake_quant(t, x)) / sigma;
    std::cout << "[ rmse/sigma ] " << type_name(t) << ": ours " << ours << ", reference rules " << ref << "\n";
    EXPECT_LE(ours, 1.1 * ref) << type_name(t);
    EXPECT_GT(ours, 0.0) << type_name(t);
    // A uniform quantizer over about +-2.5 sigma with 2^bits levels: rmse ~ step / sqrt(12).
    const int levels = t == DType::Q8_0 || t == DType::Q8_1 ? 255 : (t == DType::Q5_0 || t == DType::Q5_1) ? 32 : 16;
    EXPECT_LT(ours, 6.0 / levels / std::sqrt(12.0)) << type_name(t);
  }
  for (DType t : {DType::F16, DType::BF16}) {
    const double ours = rmse(x, dequantize(t, quantize(t, x), x.size())) / sigma;
    std::cout << "[ rmse/sigma ] " << type_name(t) << ": " << ours << "\n";
    EXPECT_LT(ours, t == DType::F16 ? 4e-4 : 3e-3) << type_name(t);  // 11 and 8 significant bits
  }
}

// ---- vec_dot against the dot product of the dequantized vectors ----

// What vec_dot must equal: the double dot of the dequantized rows. The difference is bounded
// by float accumulation: at most (chain + 3) roundings of 2^-24 relative to sum |w_i x_i|, where
// chain is the longest run of dependent float additions (one per block for the quantized types,
// n / 8 plus a scalar tail for the float types with 8-lane accumulators). Q8_1's s is d * sum(q)
// rounded to fp16, used by the offset formats instead of the exact sum: add |m_w * s_x| * 2^-11
// per block for them.
struct DotExpectation {
  double value = 0;
  double tolerance = 0;
};

DotExpectation expected_dot(DType t, const std::vector<uint8_t>& w, const std::vector<uint8_t>& x, size_t n) {
  const DType xt = type_info(t).vec_dot_type;
  const std::vector<float> wf = dequantize(t, w, n), xf = dequantize(xt, x, n);
  DotExpectation e;
  double magnitude = 0;
  for (size_t i = 0; i < n; ++i) {
    e.value += static_cast<double>(wf[i]) * xf[i];
    magnitude += std::fabs(static_cast<double>(wf[i]) * xf[i]);
  }
  const double chain = type_info(t).block_size == 1 ? static_cast<double>(n) / 8 + 8 : static_cast<double>(n) / 32;
  e.tolerance = (chain + 3) * std::ldexp(1.0, -24) * magnitude + 1e-30;
  if (t == DType::Q4_1 || t == DType::Q5_1) {
    for (size_t b = 0; b < n / 32; ++b) {
      uint16_t m, s;
      std::memcpy(&m, w.data() + b * type_info(t).block_bytes + 2, 2);
      std::memcpy(&s, x.data() + b * sizeof(BlockQ8_1) + 2, 2);
      e.tolerance += std::fabs(fp16_to_fp32(m) * fp16_to_fp32(s)) * std::ldexp(1.0, -11);
    }
  }
  return e;
}

TEST(LegacyVecDot, EqualsDotOfDequantizedRows) {
  for (size_t n : {size_t{32}, size_t{96}, size_t{2048}, size_t{5632}}) {
    const std::vector<float> wf = gaussian(n, 11 + static_cast<uint32_t>(n), 0.05f);
    const std::vector<float> xf = gaussian(n, 12 + static_cast<uint32_t>(n), 3.0f);
    for (DType t : kAllTypes) {
      const DType xt = type_info(t).vec_dot_type;
      const std::vector<uint8_t> w = quantize(t, wf), x = quantize(xt, xf);
      const DotExpectation e = expected_dot(t, w, x, n);
      for (Isa isa : supported_levels()) {
        const float got = ops(t, isa).vec_dot(static_cast<int64_t>(n), w.data(), x.data());
        EXPECT_NEAR(got, e.value, e.tolerance) << type_name(t) << " " << isa_name(isa) << " n=" << n;
      }
    }
  }
}

TEST(LegacyVecDot, FloatTypesHandleLengthsThatAreNotAMultipleOfTheVector) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{17}, size_t{63}, size_t{129}, size_t{1001}}) {
    const std::vector<float> wf = gaussian(n, 5, 1.0f), xf = gaussian(n, 6, 1.0f);
    for (DType t : {DType::F32, DType::F16, DType::BF16}) {
      const std::vector<uint8_t> w = quantize(t, wf), x = quantize(t, xf);
      const DotExpectation e = expected_dot(t, w, x, n);
      for (Isa isa : supported_levels()) {
        const float got = ops(t, isa).vec_dot(static_cast<int64_t>(n), w.data(), x.data());
        EXPECT_NEAR(got, e.value, e.tolerance) << type_name(t) << " " << isa_name(isa) << " n=" << n;
      }
    }
  }
}

}  // namespace
}  // namespace zen::kernels
