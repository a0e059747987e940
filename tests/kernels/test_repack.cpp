// Load-time layouts (kernels/repack.h): Q4_K_LANES keeps every weight of the Q4_K it came
// from, puts each level where kernels/quant_k_lanes.cpp says, and its dot products (portable
// and per ISA) agree with Q4_K's; its gemm tiles are bit-identical to its vec_dot. Q4_K_X4
// holds the same blocks with rows interleaved by 4, and its gemm gives LANES's vec_dot exactly.
// Q6_K_LANES: the same checks against Q6_K.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
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
  repack(DType::Q4_K, DType::Q4_K_LANES, q4.data(), out.data(), 1, n);
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
  EXPECT_FALSE(type_from_name("q4_K_x4").has_value());
  EXPECT_TRUE(type_info(DType::Q4_K_X4).internal);
  EXPECT_EQ(row_group(DType::Q4_K_X4), 4);
  EXPECT_EQ(row_group(DType::Q4_K_LANES), 1);
  EXPECT_FALSE(repack_target(DType::Q5_K, detected_isa(), 64).has_value());
  EXPECT_FALSE(type_from_name("q6_K_lanes").has_value());
  EXPECT_FALSE(repack_target(DType::Q4_K, Isa::Scalar, 64).has_value()) << "the scalar level reads Q4_K as it is";
  EXPECT_THROW(repack(DType::Q6_K, DType::Q4_K_LANES, nullptr, nullptr, 0, 0), std::invalid_argument);
  EXPECT_THROW(repack(DType::Q4_K, DType::Q4_K_X4, nullptr, nullptr, 3, QK_K), std::invalid_argument) << "3 rows";
  if (isa_supported(Isa::Avx512)) {
    EXPECT_EQ(repack_target(DType::Q4_K, Isa::Avx512, 64), DType::Q4_K_X4);
    EXPECT_EQ(repack_target(DType::Q4_K, Isa::Avx512, 66), DType::Q4_K_LANES) << "rows not in groups of 4";
    EXPECT_EQ(repack_target(DType::Q4_K, Isa::Avx512, 64, true), DType::Q4_K_LANES) << "get_row needs plain rows";
  }
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

TEST(Repack, Q4KX4InterleavesLanesBlocksByFour) {
  const int64_t n = QK_K * 3, rows = 8, nb = n / QK_K;
  std::vector<uint8_t> q4;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = random_q4_K(n, static_cast<uint32_t>(50 + r));
    q4.insert(q4.end(), row.begin(), row.end());
  }
  std::vector<uint8_t> lanes(q4.size()), x4(q4.size());
  repack(DType::Q4_K, DType::Q4_K_LANES, q4.data(), lanes.data(), rows, n);
  repack(DType::Q4_K, DType::Q4_K_X4, q4.data(), x4.data(), rows, n);
  const auto* l = reinterpret_cast<const BlockQ4_K*>(lanes.data());
  const size_t group_bytes = 4 * nb * sizeof(BlockQ4_K);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ4_K got = x4_get(x4.data() + (r / 4) * group_bytes, r % 4, b, nb);
      ASSERT_EQ(0, std::memcmp(&got, &l[r * nb + b], sizeof(BlockQ4_K))) << "row " << r << " block " << b;
    }
  // the order a tile reads: blocks 0, 1 of rows 0..3, then the lone block 2 of rows 0..3
  const auto place = [&](int64_t i, int64_t b) {
    const X4Place p = x4_place(i, b, nb);
    return std::tuple(p.offset, p.S, p.k);
  };
  EXPECT_EQ(place(0, 0), std::tuple(int64_t{0}, 8, 0));
  EXPECT_EQ(place(0, 1), std::tuple(int64_t{0}, 8, 1));
  EXPECT_EQ(place(1, 0), std::tuple(int64_t{0}, 8, 2));
  EXPECT_EQ(place(3, 1), std::tuple(int64_t{0}, 8, 7));
  EXPECT_EQ(place(0, 2), std::tuple(int64_t{8 * 144}, 4, 0));
  EXPECT_EQ(place(3, 2), std::tuple(int64_t{8 * 144}, 4, 3));
  // a step's levels, after its 16 header bytes per block: 16-byte piece v of the 4 rows side by
  // side, a full step's first blocks' pieces (b = 0) before its second ones'
  for (int v = 0; v < 8; ++v) {
    EXPECT_EQ(x4_piece(5, v, 8), 16 * 8 + 512 + 64 * v + 16 * 2);
    EXPECT_EQ(0, std::memcmp(x4.data() + 16 * 8 + 512 + 64 * v + 16 * 2, l[2 * nb + 1].qs + 16 * v, 16)) << "row 2, block 1";
    EXPECT_EQ(0, std::memcmp(x4.data() + 8 * 144 + 16 * 4 + 64 * v + 16 * 3, l[3 * nb + 2].qs + 16 * v, 16)) << "row 3's lone block";
  }
  // every scale and min bit: the repack of all-ones and all-zeros scale fields reads back
  for (const uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0xa5}}) {
    std::vector<uint8_t> q = q4;
    for (int64_t b = 0; b < rows * nb; ++b) std::memset(reinterpret_cast<BlockQ4_K*>(q.data())[b].scales, fill, K_SCALE_SIZE);
    repack(DType::Q4_K, DType::Q4_K_X4, q.data(), x4.data(), rows, n);
    for (int64_t b = 0; b < nb; ++b)
      ASSERT_EQ(0, std::memcmp(x4_get(x4.data() + group_bytes, 3, b, nb).scales, reinterpret_cast<BlockQ4_K*>(q.data())[7 * nb + b].scales,
                               K_SCALE_SIZE))
          << "fill " << int{fill} << " block " << b;
  }
}

TEST(Repack, Q4KX4GemmEqualsLanesVecDot) {
  for (Isa isa : levels()) {
    const TypeOps& o = ops(DType::Q4_K_X4, isa);
    ASSERT_TRUE(o.gemm) << "every level reads Q4_K_X4 (portable gemm)";
    EXPECT_FALSE(o.vec_dot) << "rows are interleaved: only gemm reads them";
    const VecDotFn dot = ops(DType::Q4_K_LANES, isa).vec_dot;
    for (int64_t nb : {3, 4}) {
      const int64_t n = QK_K * nb;
      SCOPED_TRACE(std::string(isa_name(isa)) + " blocks " + std::to_string(nb));
      const size_t rb = row_bytes(DType::Q4_K, n), xrow = row_bytes(DType::Q8_K, n) + 8;
      for (int64_t nr : {4, 8, 12})
        for (int64_t nc : {1, 2, 3, 4, 5, 7}) {
          std::vector<uint8_t> q4;
          for (int64_t i = 0; i < nr; ++i) {
            const std::vector<uint8_t> r = random_q4_K(n, static_cast<uint32_t>(10 * nr + i));
            q4.insert(q4.end(), r.begin(), r.end());
          }
          std::vector<uint8_t> lanes(q4.size()), w(q4.size()), x(xrow * nc);
          repack(DType::Q4_K, DType::Q4_K_LANES, q4.data(), lanes.data(), nr, n);
          repack(DType::Q4_K, DType::Q4_K_X4, q4.data(), w.data(), nr, n);
          for (int64_t j = 0; j < nc; ++j) {
            const std::vector<uint8_t> r = relayout(random_q8_K(n, static_cast<uint32_t>(900 + 10 * nc + j)), DType::Q4_K_X4, isa, n);
            std::memcpy(x.data() + xrow * j, r.data(), r.size());
          }
          const size_t ldy = static_cast<size_t>(nr) + 3;
          std::vector<float> y(ldy * nc, -12345.f);
          o.gemm(n, nr, nc, w.data(), rb, x.data(), xrow, y.data(), ldy);
          for (int64_t j = 0; j < nc; ++j)
            for (int64_t i = 0; i < static_cast<int64_t>(ldy); ++i) {
              const float got = y[j * ldy + i];
              if (i >= nr)
                ASSERT_EQ(got, -12345.f) << "wrote outside the tile";
              else
                ASSERT_EQ(got, dot(n, lanes.data() + rb * i, x.data() + xrow * j)) << "nr " << nr << " nc " << nc << " i " << i << " j " << j;
            }
        }
    }
  }
}

// Q6_K blocks of random bytes (every level and signed scale), with small finite d.
std::vector<uint8_t> random_q6_K(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> q(row_bytes(DType::Q6_K, n));
  for (uint8_t& b : q) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> df(-0.01f, 0.01f);
  for (auto* b = reinterpret_cast<BlockQ6_K*>(q.data()); b < reinterpret_cast<BlockQ6_K*>(q.data() + q.size()); ++b)
    b->d = fp32_to_fp16(df(rng));
  return q;
}

std::vector<uint8_t> q6_lanes(const std::vector<uint8_t>& q6, int64_t rows, int64_t n) {
  std::vector<uint8_t> out(q6.size());
  repack(DType::Q6_K, DType::Q6_K_LANES, q6.data(), out.data(), rows, n);
  return out;
}

TEST(Repack, Q6KLanesKeepsEveryWeightInTheDocumentedPlace) {
  const int64_t n = QK_K * 3;
  const std::vector<uint8_t> q6 = random_q6_K(n, 21), ql = q6_lanes(q6, 1, n);
  std::vector<float> want(n), got(n);
  ops(DType::Q6_K, Isa::Scalar).dequantize(q6.data(), want.data(), n);
  for (Isa isa : levels()) {
    ops(DType::Q6_K_LANES, isa).dequantize(ql.data(), got.data(), n);
    ASSERT_EQ(got, want) << isa_name(isa);
  }
  // level t of sub-block l (i = t / 4 of the four vectors): nibble i % 2 of ql[64 (i / 2) + 4l + t % 4],
  // high bits 2i, 2i+1 of qh[4l + t % 4]
  const auto& src = reinterpret_cast<const BlockQ6_K*>(q6.data())[1];
  const auto& dst = reinterpret_cast<const BlockQ6_K*>(ql.data())[1];
  ASSERT_EQ(0, std::memcmp(dst.scales, src.scales, sizeof src.scales));
  ASSERT_EQ(dst.d, src.d);
  for (int e = 0; e < QK_K; ++e) {
    const int h = e / 128, k = e % 128, lo = k % 64 < 32 ? 0 : 32;  // Q6_K's own order
    const int nib = (src.ql[64 * h + lo + k % 32] >> (k < 64 ? 0 : 4)) & 0x0f;
    const int hi = (src.qh[32 * h + k % 32] >> (2 * (k / 32))) & 3;
    const int l = e / 16, i = (e % 16) / 4, p = 4 * l + e % 4;
    const int got_level = ((dst.ql[64 * (i / 2) + p] >> (4 * (i % 2))) & 0x0f) | ((dst.qh[p] >> (2 * i)) & 3) << 4;
    ASSERT_EQ(got_level, nib | hi << 4) << "element " << e;
  }
}

TEST(Repack, Q6KLanesVecDotMatchesQ6KAndGemmEqualsVecDot) {
  for (int64_t nb : {1, 3, 8})
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      const int64_t n = QK_K * nb;
      const std::vector<uint8_t> q6 = random_q6_K(n, seed + 10 * nb), ql = q6_lanes(q6, 1, n);
      const std::vector<uint8_t> x = random_q8_K(n, 300 + seed + 10 * nb);
      const float want = ops(DType::Q6_K, Isa::Scalar).vec_dot(n, q6.data(), x.data());
      std::vector<float> wd(n), xd(n);
      ops(DType::Q6_K, Isa::Scalar).dequantize(q6.data(), wd.data(), n);
      ops(DType::Q8_K, Isa::Scalar).dequantize(x.data(), xd.data(), n);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(double(wd[i]) * xd[i]);
      for (Isa isa : levels()) {
        const float got = ops(DType::Q6_K_LANES, isa).vec_dot(n, ql.data(), relayout(x, DType::Q6_K_LANES, isa, n).data());
        EXPECT_NEAR(got, want, 1e-6 * mag) << isa_name(isa) << " blocks " << nb << " seed " << seed;
      }
    }
  bool any = false;
  for (Isa isa : levels()) {
    const TypeOps& o = ops(DType::Q6_K_LANES, isa);
    if (!o.gemm) continue;
    any = true;
    EXPECT_TRUE(o.gemm_exact);
    const int64_t n = QK_K * 3;
    const size_t wrow = row_bytes(DType::Q6_K, n) + 16, xrow = row_bytes(DType::Q8_K, n) + 8;
    for (int64_t nr : {1, 2, 3, 4, 5, 8})
      for (int64_t nc : {1, 2, 3, 4, 6}) {
        std::vector<uint8_t> w(wrow * nr), x(xrow * nc);
        for (int64_t i = 0; i < nr; ++i) {
          const std::vector<uint8_t> r = q6_lanes(random_q6_K(n, static_cast<uint32_t>(10 * nr + i)), 1, n);
          std::memcpy(w.data() + wrow * i, r.data(), r.size());
        }
        for (int64_t j = 0; j < nc; ++j) {
          const std::vector<uint8_t> r = relayout(random_q8_K(n, static_cast<uint32_t>(800 + 10 * nc + j)), DType::Q6_K_LANES, isa, n);
          std::memcpy(x.data() + xrow * j, r.data(), r.size());
        }
        testing::check_gemm_against_vec_dot(o, n, nr, nc, w.data(), wrow, x.data(), xrow,
                                            [](const uint8_t*, const uint8_t*) { return 0.0; });
      }
  }
  if (!any) GTEST_SKIP() << "no ISA level on this CPU has Q6_K_LANES tiles (AVX-512 VNNI only)";
}

}  // namespace
}  // namespace zen::kernels
