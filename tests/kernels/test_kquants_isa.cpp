// K-quant SIMD kernels against the scalar reference, for every ISA level this CPU supports:
// vec_dot (tight relative tolerance: the integer part is exact, only float summation order
// differs), Q8_K quantize (byte-exact), and the gemm tile entries (equal to vec_dot).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace zen::kernels {
namespace {

const DType kWeightTypes[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

std::vector<Isa> simd_levels() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (isa != Isa::Scalar && isa_supported(isa)) out.push_back(isa);
  return out;
}

using testing::gaussian;

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x, Isa isa = Isa::Scalar) {
  std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())));
  ops(t, isa).quantize(x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

// Blocks of random bytes (every scale, min and level pattern), with finite random d fields.
std::vector<uint8_t> random_blocks(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> q(row_bytes(t, n));
  for (uint8_t& b : q) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> df(-0.01f, 0.01f);
  const size_t bb = type_info(t).block_bytes;
  for (size_t off = 0; off < q.size(); off += bb) {
    uint8_t* p = q.data() + off;
    const uint16_t d = fp32_to_fp16(df(rng)), dmin = fp32_to_fp16(df(rng));
    switch (t) {
      case DType::Q2_K: std::memcpy(p + offsetof(BlockQ2_K, d), &d, 2); std::memcpy(p + offsetof(BlockQ2_K, dmin), &dmin, 2); break;
      case DType::Q3_K: std::memcpy(p + offsetof(BlockQ3_K, d), &d, 2); break;
      case DType::Q4_K: std::memcpy(p + offsetof(BlockQ4_K, d), &d, 2); std::memcpy(p + offsetof(BlockQ4_K, dmin), &dmin, 2); break;
      case DType::Q5_K: std::memcpy(p + offsetof(BlockQ5_K, d), &d, 2); std::memcpy(p + offsetof(BlockQ5_K, dmin), &dmin, 2); break;
      case DType::Q6_K: std::memcpy(p + offsetof(BlockQ6_K, d), &d, 2); break;
      case DType::Q8_K: {
        auto* b = reinterpret_cast<BlockQ8_K*>(p);  // full int8 range, consistent bsums
        b->d = df(rng);
        for (int j = 0; j < 16; ++j) {
          int s = 0;
          for (int l = 0; l < 16; ++l) s += b->qs[16 * j + l];
          b->bsums[j] = static_cast<int16_t>(s);
        }
        break;
      }
      default: break;
    }
  }
  return q;
}

// x (plain Q8_K blocks) in the order w_type's kernels at `isa` read (relayout_x).
std::vector<uint8_t> for_isa(DType w_type, Isa isa, std::vector<uint8_t> x, int64_t n) {
  if (const RelayoutFn relayout = ops(w_type, isa).relayout_x) relayout(x.data(), n);
  return x;
}

// Sum of |w_i * x_i| over the dequantized rows: the scale of a dot product's rounding error.
double magnitude(DType t, const uint8_t* w, const uint8_t* x, int64_t n) {
  std::vector<float> wd(n), xd(n);
  ops(t, Isa::Scalar).dequantize(w, wd.data(), n);
  ops(DType::Q8_K, Isa::Scalar).dequantize(x, xd.data(), n);
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m += std::fabs(double(wd[i]) * xd[i]);
  return m;
}

TEST(KQuantIsa, Q8KQuantizeIsByteExact) {
  std::vector<float> x = gaussian(QK_K * 8, 5, 3.f);
  for (int j = 0; j < QK_K; ++j) x[j] = 0.f;                         // zero block
  x[QK_K + 9] = 40.f;                                               // +max first ...
  x[QK_K + 200] = -40.f;                                            // ... then -max
  for (int j = 0; j < QK_K; ++j) x[2 * QK_K + j] = 0.25f * (j % 9) - 1.f;  // exact ties
  for (int j = 0; j < QK_K; ++j) x[3 * QK_K + j] = 1e-3f * static_cast<float>(j - 128);
  const std::vector<uint8_t> ref = quantize(DType::Q8_K, x);
  for (Isa isa : simd_levels()) {
    SCOPED_TRACE(isa_name(isa));
    const std::vector<uint8_t> got = quantize(DType::Q8_K, x, isa);
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got[i], ref[i]) << "byte " << i << " block " << i / sizeof(BlockQ8_K);
  }
}

TEST(KQuantIsa, WeightQuantizeAndDequantizeMatchScalar) {
  const std::vector<float> x = gaussian(QK_K * 4, 77, 0.05f);
  for (DType t : kWeightTypes) {
    const std::vector<uint8_t> ref = quantize(t, x);
    std::vector<float> ref_f(x.size());
    ops(t, Isa::Scalar).dequantize(ref.data(), ref_f.data(), static_cast<int64_t>(x.size()));
    for (Isa isa : simd_levels()) {
      SCOPED_TRACE(std::string(type_name(t)) + " " + isa_name(isa));
      ASSERT_EQ(quantize(t, x, isa), ref);
      std::vector<float> got(x.size());
      ops(t, isa).dequantize(ref.data(), got.data(), static_cast<int64_t>(x.size()));
      ASSERT_EQ(got, ref_f);
    }
  }
}

TEST(KQuantIsa, VecDotMatchesScalarOnQuantizedRows) {
  for (DType t : kWeightTypes)
    for (int64_t nb : {1, 2, 3, 8, 11}) {
      const int64_t n = QK_K * nb;
      const std::vector<uint8_t> w = quantize(t, gaussian(n, static_cast<uint32_t>(nb)));
      const std::vector<uint8_t> x = quantize(DType::Q8_K, gaussian(n, static_cast<uint32_t>(50 + nb)));
      const float ref = ops(t, Isa::Scalar).vec_dot(n, w.data(), x.data());
      const double tol = 1e-6 * magnitude(t, w.data(), x.data(), n);
      for (Isa isa : simd_levels()) {
        const float got = ops(t, isa).vec_dot(n, w.data(), for_isa(t, isa, x, n).data());
        EXPECT_NEAR(got, ref, tol) << type_name(t) << " " << isa_name(isa) << " blocks " << nb;
      }
    }
}

TEST(KQuantIsa, VecDotMatchesScalarOnRandomBits) {
  // Arbitrary bit patterns reach every scale/min value and the int8 extremes of Q8_K (-128).
  for (DType t : kWeightTypes)
    for (uint32_t seed = 1; seed <= 6; ++seed) {
      const int64_t n = QK_K * 5;
      const std::vector<uint8_t> w = random_blocks(t, n, seed), x = random_blocks(DType::Q8_K, n, 1000 + seed);
      const float ref = ops(t, Isa::Scalar).vec_dot(n, w.data(), x.data());
      const double tol = 1e-6 * magnitude(t, w.data(), x.data(), n);
      for (Isa isa : simd_levels()) {
        const float got = ops(t, isa).vec_dot(n, w.data(), for_isa(t, isa, x, n).data());
        EXPECT_NEAR(got, ref, tol) << type_name(t) << " " << isa_name(isa) << " seed " << seed;
      }
    }
}

TEST(KQuantIsa, RelayoutPermutesEach128Group) {
  // The only relayout so far (AVX-512 Q4_K/Q5_K): group halves a = [0,16) [32,48) [64,80)
  // [96,112), b = [16,32) [48,64) [80,96) [112,128); d untouched, bsums summed in pairs.
  const int64_t n = QK_K * 2;
  const std::vector<uint8_t> x = random_blocks(DType::Q8_K, n, 5);
  bool any = false;
  for (Isa isa : simd_levels())
    for (DType t : kWeightTypes) {
      const RelayoutFn relayout = ops(t, isa).relayout_x;
      if (!relayout) continue;
      any = true;
      SCOPED_TRACE(std::string(type_name(t)) + " " + isa_name(isa));
      std::vector<uint8_t> y = x;
      relayout(y.data(), n);
      for (int64_t b = 0; b < n / QK_K; ++b) {
        const auto* xb = reinterpret_cast<const BlockQ8_K*>(x.data()) + b;
        const auto* yb = reinterpret_cast<const BlockQ8_K*>(y.data()) + b;
        ASSERT_EQ(yb->d, xb->d);
        for (int j = 0; j < 8; ++j) ASSERT_EQ(yb->bsums[j], xb->bsums[2 * j] + xb->bsums[2 * j + 1]) << "bsums " << j;
        for (int j = 8; j < 16; ++j) ASSERT_EQ(yb->bsums[j], 0) << "bsums " << j;
        for (int i = 0; i < QK_K; ++i) {
          const int g = i / 128, k = i % 128, half = k / 64, chunk = (k % 64) / 16, e = k % 16;
          ASSERT_EQ(yb->qs[i], xb->qs[128 * g + 32 * chunk + 16 * half + e]) << "block " << b << " byte " << i;
        }
      }
    }
  if (!any) GTEST_SKIP() << "no ISA level on this CPU rearranges activations";
}

TEST(KQuantIsa, GemmEqualsVecDot) {
  const int64_t n = QK_K * 3;
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    for (DType t : kWeightTypes) {
      const TypeOps& o = ops(t, isa);
      if (!o.gemm) continue;
      if (isa == Isa::Avx2 || isa == Isa::Avx512) {
        EXPECT_TRUE(o.gemm_exact) << "x86 K-quant tiles are bit-identical to vec_dot";
      }
      SCOPED_TRACE(std::string(type_name(t)) + " " + isa_name(isa));
      const size_t wrow = row_bytes(t, n) + 16, xrow = row_bytes(DType::Q8_K, n) + 8;  // padded strides
      for (int64_t nr : {1, 3, 4, 5, 8, 9}) {
        for (int64_t nc : {1, 2, 4, 6, 7}) {
          std::vector<uint8_t> w(wrow * nr), x(xrow * nc);
          for (int64_t i = 0; i < nr; ++i) {
            const std::vector<uint8_t> r = quantize(t, gaussian(n, static_cast<uint32_t>(10 * nr + i)));
            std::memcpy(w.data() + wrow * i, r.data(), r.size());
          }
          for (int64_t j = 0; j < nc; ++j) {
            const std::vector<uint8_t> r =
                for_isa(t, isa, quantize(DType::Q8_K, gaussian(n, static_cast<uint32_t>(700 + 10 * nc + j))), n);
            std::memcpy(x.data() + xrow * j, r.data(), r.size());
          }
          testing::check_gemm_against_vec_dot(o, n, nr, nc, w.data(), wrow, x.data(), xrow,
                                              [&](const uint8_t* wi, const uint8_t* xj) { return 1e-6 * magnitude(t, wi, xj, n); });
        }
      }
    }
  }
}

}  // namespace
}  // namespace zen::kernels
