// softmax, swiglu and rms_norm (kernels/float_ops.h) at every ISA level against the same
// functions in double: the SIMD levels compute exp with a polynomial, which must stay within a
// few float rounding errors everywhere, give exact 0 and inf past the float range, and keep NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/float_ops.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace zen::kernels {
namespace {

struct AtIsa {
  explicit AtIsa(Isa isa) : before(active_isa()) { set_active_isa(isa); }
  ~AtIsa() { set_active_isa(before); }
  Isa before;
};

double silu(double g) { return g / (1.0 + std::exp(-g)); }

TEST(FloatOps, SwigluMatchesDoubleEverywhereAtEveryLevel) {
  std::vector<float> gate, up;
  for (float g = -110.f; g <= 110.f; g += 0.0137f) gate.push_back(g);  // past both ends of exp's float range
  for (size_t i = 0; i < gate.size(); ++i) up.push_back(i % 3 == 0 ? 1.f : -0.75f);
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    AtIsa at(isa);
    for (const size_t n : {gate.size(), size_t{1}, size_t{15}, size_t{17}}) {  // every tail length
      std::vector<float> out(n + 1, 123.f);
      swiglu(gate.data(), up.data(), static_cast<int64_t>(n), out.data());
      ASSERT_EQ(out[n], 123.f) << isa_name(isa) << ": wrote past n = " << n;
      for (size_t i = 0; i < n; ++i) {
        // below -88.7, exp(-g) is inf in float and silu is 0 (the true value is under 1e-36)
        const double want = silu(gate[i]) * up[i];
        ASSERT_NEAR(out[i], want, 1e-6 * std::abs(want) + 1e-36) << isa_name(isa) << " gate " << gate[i];
      }
    }
    const float odd[] = {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, 0.f};
    const float ones[] = {1.f, 1.f, 1.f, 1.f};
    float out[4];
    swiglu(odd, ones, 4, out);
    EXPECT_TRUE(std::isnan(out[0])) << isa_name(isa);
    EXPECT_EQ(out[1], INFINITY) << isa_name(isa);
    EXPECT_EQ(out[3], 0.f) << isa_name(isa);
  }
}

TEST(FloatOps, SoftmaxMatchesDoubleAtEveryLevel) {
  for (const int n : {1, 7, 16, 33, 300}) {
    const std::vector<float> x = testing::gaussian(static_cast<size_t>(n), static_cast<uint32_t>(n), 6.f);
    double mx = -INFINITY, sum = 0;
    for (float v : x) mx = std::max(mx, static_cast<double>(v));
    for (float v : x) sum += std::exp(static_cast<double>(v - static_cast<float>(mx)));
    for (Isa isa : kAllIsas) {
      if (!isa_supported(isa)) continue;
      AtIsa at(isa);
      std::vector<float> got = x;
      got.push_back(-5.f);  // not part of the row
      softmax(got.data(), n);
      ASSERT_EQ(got[static_cast<size_t>(n)], -5.f) << isa_name(isa) << ": wrote past n = " << n;
      for (int i = 0; i < n; ++i) {
        // of the float difference, as every level takes it
        const double want = std::exp(static_cast<double>(x[static_cast<size_t>(i)] - static_cast<float>(mx))) / sum;
        ASSERT_NEAR(got[static_cast<size_t>(i)], want, 1e-6 * want + 1e-37) << isa_name(isa) << " n " << n << " i " << i;
      }
    }
  }
  // a masked position (-inf) gets exactly 0, and the rest still sums to 1
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    AtIsa at(isa);
    std::vector<float> x(20, 0.5f);
    x[3] = -INFINITY;
    x[19] = -200.f;
    softmax(x.data(), 20);
    EXPECT_EQ(x[3], 0.f) << isa_name(isa);
    EXPECT_EQ(x[19], 0.f) << isa_name(isa);
    EXPECT_NEAR(x[0], 1.0 / 18, 1e-7) << isa_name(isa);
  }
}

TEST(FloatOps, RmsNormMatchesDoubleAtEveryLevel) {
  for (const int n : {1, 17, 64, 2048}) {
    const std::vector<float> x = testing::gaussian(static_cast<size_t>(n), static_cast<uint32_t>(3 * n), 3.f);
    const std::vector<float> w = testing::gaussian(static_cast<size_t>(n), static_cast<uint32_t>(5 * n));
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
    for (Isa isa : kAllIsas) {
      if (!isa_supported(isa)) continue;
      AtIsa at(isa);
      for (const bool weighted : {false, true}) {
        std::vector<float> out(static_cast<size_t>(n) + 1, 7.f);
        rms_norm(x.data(), weighted ? w.data() : nullptr, n, 1e-5f, out.data());
        ASSERT_EQ(out[static_cast<size_t>(n)], 7.f) << isa_name(isa) << ": wrote past n = " << n;
        std::vector<float> in_place = x;  // out may alias x
        rms_norm(in_place.data(), weighted ? w.data() : nullptr, n, 1e-5f, in_place.data());
        for (int i = 0; i < n; ++i) {
          const double want = x[static_cast<size_t>(i)] * inv * (weighted ? w[static_cast<size_t>(i)] : 1.0);
          ASSERT_NEAR(out[static_cast<size_t>(i)], want, 4e-7 * std::abs(want) + 1e-30) << isa_name(isa) << " n " << n << " i " << i;
          ASSERT_EQ(in_place[static_cast<size_t>(i)], out[static_cast<size_t>(i)]) << isa_name(isa) << " in place, i " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace zen::kernels
