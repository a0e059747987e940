#include "kernels/membench.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/ops.h"
#if defined(ZEN_ARCH_X86)
#include <immintrin.h>
#endif

namespace zen::kernels {

namespace {

// XOR-folds p[a, b) into acc[8]: the read loop, at the widest loads this CPU has (a narrow
// loop measures the core's load throughput, not the memory's).
using FoldFn = void (*)(const uint64_t* p, int64_t a, int64_t b, uint64_t* acc);

void fold_scalar(const uint64_t* p, int64_t a, int64_t b, uint64_t* acc) {
  int64_t i = a;
  for (; i + 8 <= b; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] ^= p[i + j];
  for (; i < b; ++i) acc[0] ^= p[i];
}

#if defined(ZEN_ARCH_X86)
__attribute__((target("avx512f"))) void fold_avx512(const uint64_t* p, int64_t a, int64_t b, uint64_t* acc) {
  __m512i x0 = _mm512_setzero_si512(), x1 = x0, x2 = x0, x3 = x0;
  int64_t i = a;
  for (; i + 32 <= b; i += 32) {
    x0 = _mm512_xor_si512(x0, _mm512_loadu_si512(p + i));
    x1 = _mm512_xor_si512(x1, _mm512_loadu_si512(p + i + 8));
    x2 = _mm512_xor_si512(x2, _mm512_loadu_si512(p + i + 16));
    x3 = _mm512_xor_si512(x3, _mm512_loadu_si512(p + i + 24));
  }
  _mm512_storeu_si512(acc, _mm512_xor_si512(_mm512_loadu_si512(acc), _mm512_xor_si512(_mm512_xor_si512(x0, x1), _mm512_xor_si512(x2, x3))));
  fold_scalar(p, i, b, acc);
}

__attribute__((target("avx2"))) void fold_avx2(const uint64_t* p, int64_t a, int64_t b, uint64_t* acc) {
  __m256i x0 = _mm256_setzero_si256(), x1 = x0, x2 = x0, x3 = x0;
  int64_t i = a;
  for (; i + 16 <= b; i += 16) {
    x0 = _mm256_xor_si256(x0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    x1 = _mm256_xor_si256(x1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
    x2 = _mm256_xor_si256(x2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
    x3 = _mm256_xor_si256(x3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
  }
  const __m256i x = _mm256_xor_si256(_mm256_xor_si256(x0, x1), _mm256_xor_si256(x2, x3));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc), _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc)), x));
  fold_scalar(p, i, b, acc);
}
#endif

FoldFn pick_fold() {
#if defined(ZEN_ARCH_X86)
  if (isa_supported(Isa::Avx512)) return fold_avx512;
  if (isa_supported(Isa::Avx2)) return fold_avx2;
#endif
  return fold_scalar;
}

}  // namespace

double read_bandwidth_gbs(ThreadPool& pool, size_t bytes, int reps) {
  const size_t n = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
  // Touch every page from the thread that will read it (first touch places the memory).
  const int64_t chunk = int64_t{1} << 20;  // elements (8 MiB) per work item
  pool.parallel_for(static_cast<int64_t>(n), chunk, [&](int64_t a, int64_t b, int) {
    for (int64_t i = a; i < b; ++i) buf[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
  });
  std::vector<uint64_t> sink(static_cast<size_t>(pool.size()) * 8, 0);
  const FoldFn fold = pick_fold();
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), chunk, [&](int64_t a, int64_t b, int ith) {
      uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      fold(buf.get(), a, b, acc);
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
