// Every ISA level that this CPU supports against the scalar reference, for the legacy formats:
// quantize and dequantize bit for bit, vec_dot bit for bit where every float operation is exact
// (power-of-two scales, small sums) and within float-accumulation error on random data, and
// gemm tiles equal to vec_dot, for lengths of many blocks, odd block counts and odd tile shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/half.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1};

std::vector<Isa> simd_levels() {
  std::vector<Isa> out;
  for (Isa isa : kAllIsas)
    if (isa != Isa::Scalar && isa_supported(isa)) out.push_back(isa);
  return out;
}

bool is_float_type(DType t) { return type_info(t).block_size == 1; }

// Element counts to try: several blocks, odd block counts; odd lengths for the float types.
std::vector<int64_t> lengths(DType t) {
  if (is_float_type(t)) return {1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 129, 255, 2048, 2051};
  return {32, 64, 96, 224, 256, 2080, 5632};
}

// Random blocks whose scale fields are finite fp16 values chosen by scale(rng) and whose other
// bytes are random. Q8 quants avoid -128 when `activation` (our quantizers never write it).
struct RowMaker {
  std::mt19937 rng{1234};

  uint16_t pick_half(bool exact) {
    if (exact) {  // small integer times 2^-7: every product and sum below stays exact in float
      std::uniform_int_distribution<int> k(-1000, 1000);
      return fp32_to_fp16(std::ldexp(static_cast<float>(k(rng)), -7));
    }
    std::normal_distribution<float> dist(0.0f, 0.02f);
    return fp32_to_fp16(dist(rng));
  }

  std::vector<uint8_t> quant_row(DType t, int64_t n, bool exact, bool activation) {
    const TypeInfo& ti = type_info(t);
    std::vector<uint8_t> row(row_bytes(t, n));
    for (uint8_t& b : row) b = static_cast<uint8_t>(rng());
    for (size_t off = 0; off < row.size(); off += ti.block_bytes) {
      uint8_t* blk = row.data() + off;
      // d: 2^-3 for weights and 2^-4 for activations in exact mode.
      const uint16_t d = exact ? fp32_to_fp16(activation ? 0.0625f : 0.125f) : pick_half(false);
      std::memcpy(blk, &d, 2);
      if (t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q8_1) {
        uint16_t second = exact && (t == DType::Q4_1 || t == DType::Q5_1)
                              ? fp32_to_fp16(static_cast<float>(static_cast<int>(rng() % 17) - 8))
                              : pick_half(exact);
        std::memcpy(blk + 2, &second, 2);
      }
      if (activation && (t == DType::Q8_0 || t == DType::Q8_1)) {
        const size_t qs = t == DType::Q8_0 ? 2 : 4;
        for (size_t j = 0; j < 32; ++j)
          if (blk[qs + j] == 0x80) blk[qs + j] = 0x81;
      }
    }
    return row;
  }

  std::vector<uint8_t> float_row(DType t, int64_t n, bool exact) {
    std::vector<float> f(static_cast<size_t>(n));
    std::uniform_int_distribution<int> k(-64, 64);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (float& v : f) v = exact ? std::ldexp(static_cast<float>(k(rng)), -4) : dist(rng);
    std::vector<uint8_t> row(row_bytes(t, n));
    ops(t, Isa::Scalar).quantize(f.data(), row.data(), n);
    return row;
  }

  std::vector<uint8_t> row(DType t, int64_t n, bool exact, bool activation) {
    return is_float_type(t) ? float_row(t, n, exact) : quant_row(t, n, exact, activation);
  }
};

// Sum of |w_i x_i| over the dequantized rows, for relative tolerances.
double magnitude(DType t, const uint8_t* w, const uint8_t* x, int64_t n) {
  const DType xt = type_info(t).vec_dot_type;
  std::vector<float> wf(static_cast<size_t>(n)), xf(static_cast<size_t>(n));
  ops(t, Isa::Scalar).dequantize(w, wf.data(), n);
  ops(xt, Isa::Scalar).dequantize(x, xf.data(), n);
  double m = 0;
  for (size_t i = 0; i < wf.size(); ++i) m += std::fabs(static_cast<double>(wf[i]) * xf[i]);
  if (t == DType::Q4_1 || t == DType::Q5_1)  // m_w * s_x terms
    for (int64_t b = 0; b < n / 32; ++b) {
      uint16_t mw, sx;
      std::memcpy(&mw, w + b * type_info(t).block_bytes + 2, 2);
      std::memcpy(&sx, x + b * sizeof(BlockQ8_1) + 2, 2);
      m += std::fabs(fp16_to_fp32(mw) * fp16_to_fp32(sx));
    }
  return m;
}

// Float accumulation bound: (longest dependent chain + 3) roundings relative to the magnitude.
double tolerance(DType t, int64_t n, double mag) {
  const double chain = is_float_type(t) ? static_cast<double>(n) / 8 + 8 : static_cast<double>(n) / 32;
  return (chain + 3) * std::ldexp(1.0, -24) * mag + 1e-30;
}

TEST(LegacyIsa, QuantizeIsBitIdenticalToScalar) {
  std::mt19937 rng(99);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (Isa isa : simd_levels())
    for (DType t : kAllTypes)
      for (int64_t n : lengths(t)) {
        std::vector<float> x(static_cast<size_t>(n));
        for (float& v : x) v = dist(rng) * std::exp2(static_cast<float>(rng() % 16) - 8.0f);
        if (n >= 32) {  // exact rounding ties for round(x / d): block max 127, others k + 0.5
          x[0] = 127.0f;
          for (int j = 1; j < 32; ++j) x[static_cast<size_t>(j)] = static_cast<float>(j - 16) + 0.5f;
        }
        std::vector<uint8_t> ref(row_bytes(t, n)), got(row_bytes(t, n));
        ops(t, Isa::Scalar).quantize(x.data(), ref.data(), n);
        ops(t, isa).quantize(x.data(), got.data(), n);
        EXPECT_EQ(ref, got) << type_name(t) << " " << isa_name(isa) << " n=" << n;
      }
}

TEST(LegacyIsa, DequantizeIsBitIdenticalToScalar) {
  RowMaker maker;
  for (Isa isa : simd_levels())
    for (DType t : kAllTypes)
      for (int64_t n : lengths(t)) {
        const std::vector<uint8_t> row = maker.row(t, n, false, false);
        std::vector<float> ref(static_cast<size_t>(n)), got(static_cast<size_t>(n));
        ops(t, Isa::Scalar).dequantize(row.data(), ref.data(), n);
        ops(t, isa).dequantize(row.data(), got.data(), n);
        EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), ref.size() * sizeof(float)))
            << type_name(t) << " " << isa_name(isa) << " n=" << n;
      }
}

TEST(LegacyIsa, VecDotIsBitIdenticalWhenArithmeticIsExact) {
  RowMaker maker;
  for (DType t : kAllTypes) {
    const DType xt = type_info(t).vec_dot_type;
    for (int64_t n : lengths(t)) {
      // Integer parts are compared exactly: every scale is a power of two or a small dyadic.
      const std::vector<uint8_t> w = maker.row(t, n, true, false), x = maker.row(xt, n, true, true);
      const float ref = ops(t, Isa::Scalar).vec_dot(n, w.data(), x.data());
      for (Isa isa : simd_levels())
        EXPECT_EQ(ref, ops(t, isa).vec_dot(n, w.data(), x.data())) << type_name(t) << " " << isa_name(isa) << " n=" << n;
    }
  }
}

TEST(LegacyIsa, VecDotMatchesScalarOnRandomRows) {
  RowMaker maker;
  for (DType t : kAllTypes) {
    const DType xt = type_info(t).vec_dot_type;
    for (int64_t n : lengths(t)) {
      const std::vector<uint8_t> w = maker.row(t, n, false, false), x = maker.row(xt, n, false, true);
      const float ref = ops(t, Isa::Scalar).vec_dot(n, w.data(), x.data());
      const double tol = tolerance(t, n, magnitude(t, w.data(), x.data(), n));
      for (Isa isa : simd_levels())
        EXPECT_NEAR(ref, ops(t, isa).vec_dot(n, w.data(), x.data()), tol)
            << type_name(t) << " " << isa_name(isa) << " n=" << n;
    }
  }
}

// gemm over nr weight rows x nc activation rows, rows padded (strides larger than a row) and y
// with a leading dimension larger than nr; padding of y must stay untouched.
void check_gemm(Isa isa, DType t, int64_t n, int64_t nr, int64_t nc, bool exact, RowMaker& maker) {
  const TypeOps& op = ops(t, isa);
  const DType xt = type_info(t).vec_dot_type;
  const size_t ws = row_bytes(t, n) + 40, xs = row_bytes(xt, n) + 24, ldy = static_cast<size_t>(nr) + 3;
  std::vector<uint8_t> w(ws * static_cast<size_t>(nr)), x(xs * static_cast<size_t>(nc));
  for (int64_t i = 0; i < nr; ++i) {
    const std::vector<uint8_t> r = maker.row(t, n, exact, false);
    std::memcpy(w.data() + static_cast<size_t>(i) * ws, r.data(), r.size());
  }
  for (int64_t j = 0; j < nc; ++j) {
    const std::vector<uint8_t> r = maker.row(xt, n, exact, true);
    std::memcpy(x.data() + static_cast<size_t>(j) * xs, r.data(), r.size());
  }
  const float sentinel = -12345.0f;
  std::vector<float> y(ldy * static_cast<size_t>(nc), sentinel);
  op.gemm(n, nr, nc, w.data(), ws, x.data(), xs, y.data(), ldy);
  for (int64_t j = 0; j < nc; ++j)
    for (size_t i = 0; i < ldy; ++i) {
      const float got = y[static_cast<size_t>(j) * ldy + i];
      if (i >= static_cast<size_t>(nr)) {
        EXPECT_EQ(got, sentinel) << "gemm wrote outside the tile";
        continue;
      }
      const uint8_t* wr = w.data() + i * ws;
      const uint8_t* xr = x.data() + static_cast<size_t>(j) * xs;
      const std::string where = std::string(type_name(t)) + " " + isa_name(isa) + " n=" + std::to_string(n) +
                                " tile " + std::to_string(nr) + "x" + std::to_string(nc);
      if (exact) {
        EXPECT_EQ(got, ops(t, Isa::Scalar).vec_dot(n, wr, xr)) << where;
      } else if (op.gemm_exact) {
        EXPECT_EQ(got, op.vec_dot(n, wr, xr)) << where << " (gemm_exact: bit-identical to vec_dot)";
      } else {
        const double tol = 2 * tolerance(t, n, magnitude(t, wr, xr, n));
        EXPECT_NEAR(got, op.vec_dot(n, wr, xr), tol) << where;
      }
    }
}

TEST(LegacyIsa, GemmEqualsVecDot) {
  RowMaker maker;
  int checked = 0;
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    for (DType t : kAllTypes) {
      if (!ops(t, isa).gemm) continue;
      for (int64_t n : {is_float_type(t) ? int64_t{37} : int64_t{32}, int64_t{96}, int64_t{2048}})
        for (int64_t nr : {1, 2, 3, 4, 5, 8, 11})
          for (int64_t nc : {1, 3, 4, 6, 9}) {
            check_gemm(isa, t, n, nr, nc, false, maker);
            check_gemm(isa, t, n, nr, nc, true, maker);
            ++checked;
          }
      // Shapes past the tiles' internal blocking: K chunks with a ragged last one, a weight
      // row group of 64 and a second group of activation rows.
      for (int64_t n : {int64_t{1120}, int64_t{5632}}) {
        check_gemm(isa, t, n, 67, 9, false, maker);
        check_gemm(isa, t, n, 67, 9, true, maker);
      }
    }
  }
  if (isa_supported(Isa::Avx2) || isa_supported(Isa::Avx512)) {
    EXPECT_GT(checked, 0) << "no gemm kernel found on an x86 SIMD level";
  }
}

}  // namespace
}  // namespace zen::kernels
