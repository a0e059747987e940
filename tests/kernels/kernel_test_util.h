// Shared helpers of the kernel tests.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/ops.h"

namespace zen::kernels::testing {

// n samples of N(0, sigma^2), reproducible from the seed.
inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Runs o.gemm on nr weight rows (w, wrow bytes apart) and nc activation rows (x, xrow apart)
// and checks every result against o.vec_dot: bit-identical when o.gemm_exact, else within
// tol(w row, x row); and that nothing outside the nr x nc tile of y was written.
template <class Tol>
void check_gemm_against_vec_dot(const TypeOps& o, int64_t n, int64_t nr, int64_t nc, const uint8_t* w, size_t wrow,
                                const uint8_t* x, size_t xrow, Tol tol) {
  const size_t ldy = static_cast<size_t>(nr) + 3;
  std::vector<float> y(ldy * static_cast<size_t>(nc), -12345.f);
  o.gemm(n, nr, nc, w, wrow, x, xrow, y.data(), ldy);
  for (int64_t j = 0; j < nc; ++j)
    for (int64_t i = 0; i < static_cast<int64_t>(ldy); ++i) {
      const float got = y[static_cast<size_t>(j) * ldy + static_cast<size_t>(i)];
      if (i >= nr) {
        ASSERT_EQ(got, -12345.f) << "wrote outside the tile";
        continue;
      }
      const uint8_t* wi = w + wrow * static_cast<size_t>(i);
      const uint8_t* xj = x + xrow * static_cast<size_t>(j);
      const float ref = o.vec_dot(n, wi, xj);
      if (o.gemm_exact)  // bit-identical: batch composition must not change a row
        ASSERT_EQ(got, ref) << "nr " << nr << " nc " << nc << " i " << i << " j " << j;
      else
        ASSERT_NEAR(got, ref, tol(wi, xj)) << "nr " << nr << " nc " << nc << " i " << i << " j " << j;
    }
}

}  // namespace zen::kernels::testing
