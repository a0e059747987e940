// Shared helpers of the kernel tests.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace zen::kernels::testing {

// n samples of N(0, sigma^2), reproducible from the seed.
inline std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, sigma);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

}  // namespace zen::kernels::testing
