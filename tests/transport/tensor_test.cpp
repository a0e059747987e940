#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "transport/tensor.h"

namespace zen::transport {
namespace {

TEST(Tensor, F32IsBitExact) {
  std::vector<float> v = {0.0f, -0.0f, 1.0f / 3.0f, 1e-40f, std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::infinity(), 123.456f, -7.5e-3f};
  TensorBuf t = encode_activations(v, {2, 4}, DType::f32);
  ASSERT_EQ(t.bytes.size(), 32u);
  auto back = decode_activations(t);
  ASSERT_EQ(back.size(), v.size());
  EXPECT_EQ(std::memcmp(back.data(), v.data(), 32), 0);
}

TEST(Tensor, F16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);               // rounds to inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);  // below half of it
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
}

TEST(Tensor, F16RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie -> even
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h);
  }
}

TEST(Tensor, ReducedPrecisionErrorIsBounded) {
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<float>(i)) * 10.0f;
  for (DType t : {DType::f16, DType::bf16}) {
    auto back = decode_activations(encode_activations(v, {10, 100}, t));
    double tol = t == DType::f16 ? 1.0 / 2048 : 1.0 / 256;  // half an ulp, relative
    for (size_t i = 0; i < v.size(); ++i) EXPECT_LE(std::fabs(back[i] - v[i]), tol * std::fabs(v[i]) + 1e-6) << i;
  }
}

TEST(Tensor, ShapeErrors) {
  std::vector<float> v(6);
  EXPECT_THROW(encode_activations(v, {4, 2}, DType::f32), std::invalid_argument);
  TensorBuf t = encode_activations(v, {2, 3}, DType::f16);
  t.bytes.pop_back();
  EXPECT_THROW(t.validate(), std::invalid_argument);
  TensorBuf big{DType::f32, {0xffffffffu, 0xffffffffu, 0xffffffffu}, {}};
  EXPECT_THROW(big.validate(), std::length_error);
  std::vector<float> out(5);
  EXPECT_THROW(decode_activations(encode_activations(v, {6}, DType::bf16), out), std::invalid_argument);
  EXPECT_EQ(parse_dtype("bf16"), DType::bf16);
  EXPECT_THROW(parse_dtype("f8"), std::invalid_argument);
}

}  // namespace
}  // namespace zen::transport
