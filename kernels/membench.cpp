#include "kernels/membench.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace zen::kernels {

double read_bandwidth_gbs(ThreadPool& pool, size_t bytes, int reps) {
  const size_t n = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
  // Touch every page from the thread that will read it (first touch places the memory).
  const int64_t chunk = int64_t{1} << 20;  // elements (8 MiB) per work item
  pool.parallel_for(static_cast<int64_t>(n), chunk, [&](int64_t a, int64_t b, int) {
    for (int64_t i = a; i < b; ++i) buf[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
  });
  std::vector<uint64_t> sink(static_cast<size_t>(pool.size()) * 8, 0);
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), chunk, [&](int64_t a, int64_t b, int ith) {
      uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = a;
      for (; i + 8 <= b; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] ^= buf[static_cast<size_t>(i + j)];
      for (; i < b; ++i) acc[0] ^= buf[static_cast<size_t>(i)];
      for (int j = 0; j < 8; ++j) sink[static_cast<size_t>(ith) * 8 + static_cast<size_t>(j)] ^= acc[j];
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s / 1e9);
  }
  volatile uint64_t keep = 0;
  for (uint64_t v : sink) keep = keep ^ v;
  (void)keep;
  return best;
}

}  // namespace zen::kernels
