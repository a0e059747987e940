// What this core sustains, for reading the kernel figures against: 512-bit vpdpbusd and
// vpaddd per second with 12 independent accumulators held in registers (items = instructions).
// An earlier loop kept its accumulators in an array that GCC left in memory and measured the
// store-reload chain instead. x86 only; skipped where the CPU lacks AVX-512 VNNI.
#include <benchmark/benchmark.h>

#if defined(__x86_64__)
// GCC 12's AVX-512 headers self-initialize their _mm512_undefined_* values, which -Wall reports.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

#define ZEN_TWELVE(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,avx512bw,avx512vnni"))) int64_t run_dpbusd(int64_t iters) {
#define ZEN_DECL(i) __m512i a##i = _mm512_set1_epi32(i);
  ZEN_TWELVE(ZEN_DECL)
  __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
  for (int64_t k = 0; k < iters; ++k) {
#define ZEN_STEP(i) a##i = _mm512_dpbusd_epi32(a##i, w, x);
    ZEN_TWELVE(ZEN_STEP)
    asm volatile("" : "+v"(w), "+v"(x));
  }
  __m512i sum = _mm512_setzero_si512();
#define ZEN_SUM(i) sum = _mm512_add_epi32(sum, a##i);
  ZEN_TWELVE(ZEN_SUM)
  return _mm512_reduce_add_epi32(sum);
}

__attribute__((target("avx512f,avx512bw"))) int64_t run_vpaddd(int64_t iters) {
  ZEN_TWELVE(ZEN_DECL)
  __m512i w = _mm512_set1_epi32(3);
  for (int64_t k = 0; k < iters; ++k) {
#define ZEN_ADD(i) a##i = _mm512_add_epi32(a##i, w);
    ZEN_TWELVE(ZEN_ADD)
    asm volatile("" : "+v"(w));
  }
  __m512i sum = _mm512_setzero_si512();
  ZEN_TWELVE(ZEN_SUM)
  return _mm512_reduce_add_epi32(sum);
}

void bm_vector(benchmark::State& state, int64_t (*run)(int64_t)) {
  if (!isa_supported(Isa::Avx512)) {
    state.SkipWithError("no AVX-512 VNNI on this CPU");
    return;
  }
  constexpr int64_t kIters = 1 << 20;
  for (auto _ : state) benchmark::DoNotOptimize(run(kIters));
  state.SetItemsProcessed(state.iterations() * kIters * 12);
}

BENCHMARK_CAPTURE(bm_vector, vpdpbusd_zmm, run_dpbusd)->Name("cpu/vpdpbusd_zmm");
BENCHMARK_CAPTURE(bm_vector, vpaddd_zmm, run_vpaddd)->Name("cpu/vpaddd_zmm");

}  // namespace
}  // namespace zen::kernels
#endif
