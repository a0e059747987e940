// Load-time layouts (kernels/repack.h): Q4_K_LANES keeps every weight of the Q4_K it came
// from, puts each level where kernels/quant_k_lanes.cpp says, and its dot products (portable
// and per ISA) agree with Q4_K's; its gemm tiles are bit-identical to its vec_dot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"
#include "kernels/repack.h"
#include "tests/kernels/kernel_test_util.h"

namespace zen::kernels {
namespace {

using testing::gaussian;

// Q4_K blocks of random bytes (every scale, min and level), with small finite d and dmin.
std::vector<uint8_t> random_q4_K(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> q(row_bytes(DType::Q4_K, n));
  for (uint8_t& b : q) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> df(-0.01f, 0.01f);
  for (auto* b = reinterpret_cast<BlockQ4_K*>(q.data()); b < reinterpret_cast<BlockQ4_K*>(q.data() + q.size()); ++b) {
    b->d = fp32_to_fp16(df(rng));
    b->dmin = fp32_to_fp16(df(rng));
  }
  return q;
}

// Q8_K activations over the whole int8 range (including -128), with consistent bsums.
std::vector<uint8_t> random_q8_K(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> q(row_bytes(DType::Q8_K, n));
  for (auto* b = reinterpret_cast<BlockQ8_K*>(q.data()); b < reinterpret_cast<BlockQ8_K*>(q.data() + q.size()); ++b) {
    b->d = std::uniform_real_distribution<float>(0.001f, 0.01f)(rng);
    for (int8_t& v : b->qs) v = static_cast<int8_t>(rng());
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += b->qs[16 * j + l];
      b->bsums[j] = static_cast<int16_t>(s);
    }
  }
  return q;
}

std::vector<uint8_t> repacked(const std::vector<uint8_t>& q4, int64_t n) {
  std::vector<uint8_t> out(q4.size());
  repack(DType::Q4_K, DType::Q4_K_LANES, q4.data(), out.data(), n);
  return out;
}

std::vector<uint8_t> relayout(std::vector<uint8_t> x, DType w_type, Isa isa, int64_t n) {
  if (const RelayoutFn f = ops(w_type, isa).relayout_x) f(x.data(), n);
  return x;
}

std::vector<Isa> levels() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

TEST(Repack, Q4KLanesIsAnInternalType) {
  const TypeInfo& ti = type_info(DType::Q4_K_LANES);
  EXPECT_TRUE(ti.internal);
  EXPECT_EQ(ti.block_bytes, sizeof(BlockQ4_K));
  EXPECT_FALSE(type_from_name("q4_K_lanes").has_value()) << "not a type a user can ask for";
  EXPECT_FALSE(repack_target(DType::Q6_K, detected_isa()).has_value());
  EXPECT_FALSE(repack_target(DType::Q4_K, Isa::Scalar).has_value()) << "the scalar level reads Q4_K as it is";
  EXPECT_THROW(repack(DType::Q6_K, DType::Q4_K_LANES, nullptr, nullptr, 0), std::invalid_argument);
}

TEST(Repack, Q4KLanesPutsEachLevelWhereTheLayoutSays) {
  const int64_t n = QK_K * 3;
  const std::vector<uint8_t> q4 = random_q4_K(n, 3), ql = repacked(q4, n);
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const auto& src = reinterpret_cast<const BlockQ4_K*>(q4.data())[b];
    const auto& dst = reinterpret_cast<const BlockQ4_K*>(ql.data())[b];
    ASSERT_EQ(dst.d, src.d);
    ASSERT_EQ(dst.dmin, src.dmin);
    ASSERT_EQ(0, std::memcmp(dst.scales, src.scales, K_SCALE_SIZE));
    for (int j = 0; j < 8; ++j)
      for (int t = 0; t < 32; ++t) {
        const int want = (src.qs[32 * (j / 2) + t] >> (4 * (j % 2))) & 0x0f;  // Q4_K: sub-block j, level t
        const int u = t / 4;
        const uint8_t byte = dst.qs[64 * (u / 4) + 8 * j + 4 * (u % 2) + t % 4];
        ASSERT_EQ(((u / 2) % 2 ? byte >> 4 : byte) & 0x0f, want) << "block " << b << " sub-block " << j << " level " << t;
      }
  }
}

TEST(Repack, Q4KLanesDequantizesToTheSameWeights) {
  const int64_t n = QK_K * 4;
  const std::vector<uint8_t> q4 = random_q4_K(n, 9), ql = repacked(q4, n);
  std::vector<float> want(n), got(n);
  ops(DType::Q4_K, Isa::Scalar).dequantize(q4.data(), want.data(), n);
  for (Isa isa : levels()) {
    ops(DType::Q4_K_LANES, isa).dequantize(ql.data(), got.data(), n);
    ASSERT_EQ(got, want) << isa_name(isa);
  }
}

TEST(Repack, Lanes16RelayoutMovesEach8ByteRun) {
  const int64_t n = QK_K * 2;
  const std::vector<uint8_t> x = random_q8_K(n, 4);
  for (Isa isa : levels()) {
    SCOPED_TRACE(isa_name(isa));
    const std::vector<uint8_t> y = relayout(x, DType::Q4_K_LANES, isa, n);
    for (int64_t b = 0; b < n / QK_K; ++b) {
      const auto& xb = reinterpret_cast<const BlockQ8_K*>(x.data())[b];
      const auto& yb = reinterpret_cast<const BlockQ8_K*>(y.data())[b];
      ASSERT_EQ(yb.d, xb.d);
      for (int j = 0; j < 8; ++j) ASSERT_EQ(yb.bsums[j], xb.bsums[2 * j] + xb.bsums[2 * j + 1]);
      for (int j = 8; j < 16; ++j) ASSERT_EQ(yb.bsums[j], 0);
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 8; ++j)
          for (int m = 0; m < 8; ++m) ASSERT_EQ(yb.qs[64 * i + 8 * j + m], xb.qs[32 * j + 8 * i + m]);
    }
  }
}

// Sum of |w_i * x_i|: the scale of a dot product's rounding error.
double magnitude(const std::vector<uint8_t>& q4, const std::vector<uint8_t>& x, int64_t n) {
  std::vector<float> wd(n), xd(n);
  ops(DType::Q4_K, Isa::Scalar).dequantize(q4.data(), wd.data(), n);
  ops(DType::Q8_K, Isa::Scalar).dequantize(x.data(), xd.data(), n);
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m += std::fabs(double(wd[i]) * xd[i]);
  return m;
}

TEST(Repack, Q4KLanesVecDotMatchesQ4K) {
  for (int64_t nb : {1, 2, 3, 8, 11})
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      const int64_t n = QK_K * nb;
      // random bits reach every scale, min and level and the int8 extremes; quantized rows
      // are what models hold
      const std::vector<uint8_t> q4 = seed == 3 ? [&] {
        std::vector<uint8_t> q(row_bytes(DType::Q4_K, n));
        ops(DType::Q4_K, Isa::Scalar).quantize(gaussian(n, 40 + nb, 0.05f).data(), q.data(), n);
        return q;
      }() : random_q4_K(n, seed + 10 * nb);
      const std::vector<uint8_t> x = random_q8_K(n, 100 + seed + 10 * nb);
      const float want = ops(DType::Q4_K, Isa::Scalar).vec_dot(n, q4.data(), x.data());
      const double tol = 1e-6 * magnitude(q4, x, n);
      const std::vector<uint8_t> ql = repacked(q4, n);
      for (Isa isa : levels()) {
        const float got = ops(DType::Q4_K_LANES, isa).vec_dot(n, ql.data(), relayout(x, DType::Q4_K_LANES, isa, n).data());
        EXPECT_NEAR(got, want, tol) << isa_name(isa) << " blocks " << nb << " seed " << seed;
      }
    }
}

TEST(Repack, Q4KLanesGemmEqualsVecDot) {
  bool any = false;
  for (Isa isa : levels()) {
    const TypeOps& o = ops(DType::Q4_K_LANES, isa);
    if (!o.gemm) continue;
    any = true;
    EXPECT_TRUE(o.gemm_exact);
    for (int64_t nb : {3, 4}) {  // an odd count ends on a lone super-block
      const int64_t n = QK_K * nb;
      SCOPED_TRACE(std::string(isa_name(isa)) + " blocks " + std::to_string(nb));
      const size_t wrow = row_bytes(DType::Q4_K, n) + 16, xrow = row_bytes(DType::Q8_K, n) + 8;  // padded strides
      for (int64_t nr : {1, 2, 3, 4, 5, 8, 9})
        for (int64_t nc : {1, 2, 3, 4, 6, 7}) {
          std::vector<uint8_t> w(wrow * nr), x(xrow * nc);
          for (int64_t i = 0; i < nr; ++i) {
            const std::vector<uint8_t> r = repacked(random_q4_K(n, static_cast<uint32_t>(10 * nr + i)), n);
            std::memcpy(w.data() + wrow * i, r.data(), r.size());
          }
          for (int64_t j = 0; j < nc; ++j) {
            const std::vector<uint8_t> r = relayout(random_q8_K(n, static_cast<uint32_t>(700 + 10 * nc + j)), DType::Q4_K_LANES, isa, n);
            std::memcpy(x.data() + xrow * j, r.data(), r.size());
          }
          testing::check_gemm_against_vec_dot(o, n, nr, nc, w.data(), wrow, x.data(), xrow,
                                              [](const uint8_t*, const uint8_t*) { return 0.0; });
        }
    }
  }
  if (!any) GTEST_SKIP() << "no ISA level on this CPU has Q4_K_LANES tiles (AVX-512 VNNI only)";
}

}  // namespace
}  // namespace zen::kernels
