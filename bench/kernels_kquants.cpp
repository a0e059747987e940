// K-quant kernel throughput: vec_dot (GB/s of weights, the decode hot path) and the gemm tile
// (items = multiply-adds), per type and ISA level, for rows of 2048 and 5632 elements.
// "l2": ~256 KiB of weights, cache resident (compute bound); "mem": ~64 MiB of weights
// (streamed from DRAM), also with two threads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.h"
#include "kernels/repack.h"

namespace zen::kernels {
namespace {

const DType kTypes[] = {DType::Q2_K,       DType::Q3_K,    DType::Q4_K, DType::Q4_K_LANES,
                        DType::Q4_K_X4, DType::Q5_K, DType::Q6_K, DType::Q6_K_LANES};

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Weight matrix of `rows` rows: one quantized row copied (quantizing 64 MiB would be slow).
std::vector<uint8_t> weights(DType t, int64_t n, int64_t rows) {
  const size_t rb = row_bytes(t, n);
  const bool load_time = type_info(t).internal;  // quantize to the file type, then repack the matrix
  const DType file_type = !load_time ? t : t == DType::Q6_K_LANES ? DType::Q6_K : DType::Q4_K;
  std::vector<uint8_t> one(rb), all(rb * static_cast<size_t>(rows));
  ops(file_type, Isa::Scalar).quantize(gaussian(static_cast<size_t>(n), 1).data(), one.data(), n);
  for (int64_t r = 0; r < rows; ++r) std::copy(one.begin(), one.end(), all.begin() + static_cast<std::ptrdiff_t>(rb * r));
  if (!load_time) return all;
  std::vector<uint8_t> packed(all.size());
  repack(file_type, t, all.data(), packed.data(), rows, n);
  return packed;
}

// Activations in the order t's kernels at isa read.
std::vector<uint8_t> activations(DType t, Isa isa, int64_t n, int64_t cols) {
  const size_t rb = row_bytes(DType::Q8_K, n);
  std::vector<uint8_t> out(rb * static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c)
    prepare_activations(t, isa, gaussian(static_cast<size_t>(n), 7 + static_cast<uint32_t>(c)).data(), out.data() + rb * c, n);
  return out;
}

void vec_dot_bench(benchmark::State& state, DType t, Isa isa, int64_t n, size_t target_bytes) {
  const size_t rb = row_bytes(t, n);
  const int64_t rows = static_cast<int64_t>(std::max<size_t>(1, target_bytes / rb));
  const std::vector<uint8_t> w = weights(t, n, rows), x = activations(t, isa, n, 1);  // a plain-row type
  const VecDotFn dot = ops(t, isa).vec_dot;
  std::vector<float> y(static_cast<size_t>(rows));
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r) y[r] = dot(n, w.data() + rb * r, x.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * rows * static_cast<int64_t>(rb));
}

void gemm_bench(benchmark::State& state, DType t, Isa isa, int64_t n, int64_t cols, size_t target_bytes) {
  const size_t rb = row_bytes(t, n), xb = row_bytes(DType::Q8_K, n);
  const int64_t rows = static_cast<int64_t>(std::max<size_t>(64, target_bytes / rb)) / 4 * 4;
  const std::vector<uint8_t> w = weights(t, n, rows), x = activations(t, isa, n, cols);
  const GemmFn gemm = ops(t, isa).gemm;
  std::vector<float> y(static_cast<size_t>(rows * cols));
  for (auto _ : state) {
    gemm(n, rows, cols, w.data(), rb, x.data(), xb, y.data(), static_cast<size_t>(rows));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * rows * static_cast<int64_t>(rb));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * rows * cols * n);
}

int register_all() {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
    if (!isa_supported(isa)) continue;
    for (DType t : kTypes)
      for (int64_t n : {2048, 5632}) {
        const std::string base = std::string(type_name(t)) + "/" + isa_name(isa) + "/" + std::to_string(n);
        if (ops(t, isa).vec_dot)
          benchmark::RegisterBenchmark(("vec_dot/" + base + "/l2").c_str(), vec_dot_bench, t, isa, n, size_t{256} << 10);
        if (isa != Isa::Scalar && ops(t, isa).vec_dot) {
          // mem x2: two threads, each streaming its own matrix (the decode setting); the
          // reported rate is the total over both threads.
          benchmark::RegisterBenchmark(("vec_dot/" + base + "/mem").c_str(), vec_dot_bench, t, isa, n, size_t{64} << 20);
          benchmark::RegisterBenchmark(("vec_dot/" + base + "/mem").c_str(), vec_dot_bench, t, isa, n, size_t{64} << 20)
              ->Threads(2)
              ->UseRealTime();
        }
        if (ops(t, isa).gemm)
          for (int64_t cols : {1, 2, 4, 16}) {
            const std::string name = "gemm/" + base + "/x" + std::to_string(cols);
            benchmark::RegisterBenchmark(name.c_str(), gemm_bench, t, isa, n, cols, size_t{0});
            // streamed from DRAM, also two threads at once (the batched-decode setting)
            benchmark::RegisterBenchmark((name + "/mem").c_str(), gemm_bench, t, isa, n, cols, size_t{64} << 20);
            benchmark::RegisterBenchmark((name + "/mem").c_str(), gemm_bench, t, isa, n, cols, size_t{64} << 20)
                ->Threads(2)
                ->UseRealTime();
          }
      }
  }
  return 0;
}

const int registered = register_all();

}  // namespace
}  // namespace zen::kernels
