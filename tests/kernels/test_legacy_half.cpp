// F16 and BF16 conversions (kernels/half.h and every ISA level's F16/BF16 quantize and
// dequantize): exhaustive decoding, round trips, subnormals, infinities, nans and rounding ties.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

std::vector<Isa> supported_levels() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

// binary16 value from its fields, computed independently with ldexp.
double f16_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0x1f) v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (exp == 0) v = std::ldexp(mant, -24);
  else v = std::ldexp(1024 + mant, exp - 25);
  return sign ? -v : v;
}

bool is_f16_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool is_bf16_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

std::vector<uint16_t> to_half(DType t, Isa isa, const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  ops(t, isa).quantize(x.data(), h.data(), static_cast<int64_t>(x.size()));
  return h;
}

std::vector<float> from_half(DType t, Isa isa, const std::vector<uint16_t>& h) {
  std::vector<float> f(h.size());
  ops(t, isa).dequantize(h.data(), f.data(), static_cast<int64_t>(h.size()));
  return f;
}

TEST(LegacyHalf, EveryF16DecodesExactlyAndRoundTrips) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (Isa isa : supported_levels()) {
    const std::vector<float> f = from_half(DType::F16, isa, all);
    const std::vector<uint16_t> back = to_half(DType::F16, isa, f);
    for (uint32_t i = 0; i < 65536; ++i) {
      const uint16_t h = all[i];
      if (is_f16_nan(h)) {
        EXPECT_TRUE(std::isnan(f[i])) << std::hex << h;
        EXPECT_TRUE(is_f16_nan(back[i])) << std::hex << h;
        continue;
      }
      ASSERT_EQ(static_cast<double>(f[i]), f16_value(h)) << std::hex << h << " " << isa_name(isa);
      ASSERT_EQ(back[i], h) << std::hex << h << " " << isa_name(isa);
      ASSERT_EQ(fp16_to_fp32(h), f[i]);
    }
  }
}

TEST(LegacyHalf, F16RoundsToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1.0);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: goes up to the even one.
  const std::vector<float> x = {
      1.0f + std::ldexp(1.0f, -11),           // -> 0x3c00
      1.0f + 3 * std::ldexp(1.0f, -11),       // -> 0x3c02
      1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20),  // above the tie -> 0x3c01
      65504.0f,                               // largest finite
      65519.996f,                             // below the overflow tie: rounds to 65504
      65520.0f,                               // tie at the top: rounds to inf
      std::ldexp(1.0f, -24),                  // smallest subnormal
      std::ldexp(1.0f, -25),                  // tie between 0 and the smallest subnormal -> 0
      std::ldexp(3.0f, -25),                  // tie between 1 and 2 subnormal ulps -> 2
      std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25),  // tie between largest subnormal and min normal
      -0.0f,
      std::numeric_limits<float>::infinity(),
      -std::numeric_limits<float>::infinity(),
      1e-30f,  // underflows to +0
  };
  const std::vector<uint16_t> want = {0x3c00, 0x3c02, 0x3c01, 0x7bff, 0x7bff, 0x7c00, 0x0001,
                                      0x0000, 0x0002, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x0000};
  for (Isa isa : supported_levels()) {
    const std::vector<uint16_t> got = to_half(DType::F16, isa, x);
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(got[i], want[i]) << "case " << i << " " << isa_name(isa);
      EXPECT_EQ(fp32_to_fp16(x[i]), want[i]) << "case " << i;
    }
    const std::vector<uint16_t> nan = to_half(DType::F16, isa, {std::numeric_limits<float>::quiet_NaN()});
    EXPECT_TRUE(is_f16_nan(nan[0])) << isa_name(isa);
  }
}

TEST(LegacyHalf, Bf16IsTheTopHalfAndRoundsToNearestEven) {
  const std::vector<float> x = {
      1.0f,
      1.0f + std::ldexp(1.0f, -8),                        // tie -> 1.0 (even)
      1.0f + 3 * std::ldexp(1.0f, -8),                    // tie -> 1 + 2^-6 (even)
      1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20),  // above tie -> up
      std::numeric_limits<float>::max(),                 // rounds up to inf
      std::numeric_limits<float>::denorm_min(),          // subnormal: kept as tiny value 0x0000 after rounding
      std::ldexp(1.0f, -130),                            // subnormal representable in bf16
      -std::numeric_limits<float>::infinity(),
      -2.5f,
  };
  const std::vector<uint16_t> want = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x7f80, 0x0000, 0x0008, 0xff80, 0xc020};
  for (Isa isa : supported_levels()) {
    const std::vector<uint16_t> got = to_half(DType::BF16, isa, x);
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(got[i], want[i]) << "case " << i << " " << isa_name(isa);
      EXPECT_EQ(fp32_to_bf16(x[i]), want[i]) << "case " << i;
    }
    // A signalling nan must come back as a nan, not as infinity.
    const float snan = fp32_from_bits(0x7f800001u);
    const std::vector<uint16_t> nan = to_half(DType::BF16, isa, {snan, -std::numeric_limits<float>::quiet_NaN()});
    EXPECT_TRUE(is_bf16_nan(nan[0])) << isa_name(isa);
    EXPECT_TRUE(is_bf16_nan(nan[1])) << isa_name(isa);
    EXPECT_EQ(nan[1] & 0x8000, 0x8000) << "sign of nan kept";
  }
}

TEST(LegacyHalf, EveryBf16DecodesToItsTopHalf) {
  std::vector<uint16_t> all(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (Isa isa : supported_levels()) {
    const std::vector<float> f = from_half(DType::BF16, isa, all);
    const std::vector<uint16_t> back = to_half(DType::BF16, isa, f);
    for (uint32_t i = 0; i < 65536; ++i) {
      ASSERT_EQ(fp32_to_bits(f[i]), i << 16) << std::hex << i << " " << isa_name(isa);
      if (is_bf16_nan(all[i])) EXPECT_TRUE(is_bf16_nan(back[i])) << std::hex << i;
      else ASSERT_EQ(back[i], all[i]) << std::hex << i << " " << isa_name(isa);
    }
  }
}

}  // namespace
}  // namespace zen::kernels
