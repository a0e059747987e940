// Legacy block formats: vec_dot and gemm throughput per type and ISA level, reported as GB/s of
// weights read (bytes_per_second) plus multiply-adds per second for the gemm.
//
//   vec_dot/<type>/<isa>/<n>:       one row of n elements, hot in cache (kernel speed).
//   matvec/<type>/<isa>/<n>x<rows>: a whole TinyLlama-shaped matrix (generation: memory bound).
//   gemm/<type>/<isa>/<n>x<rows>:   the same matrix times 64 activation rows (prompt processing),
//                                   through TypeOps::gemm, or vec_dot per pair where there is none.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

const DType kTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                        DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1};

// n x rows: the TinyLlama-1.1B ffn_up/gate (2048 -> 5632) and ffn_down (5632 -> 2048) shapes.
struct Shape {
  int64_t n, rows;
};
const Shape kShapes[] = {{2048, 5632}, {5632, 2048}};

std::vector<uint8_t> random_rows(DType t, int64_t n, int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> f(static_cast<size_t>(n));
  const size_t rb = row_bytes(t, n);
  std::vector<uint8_t> out(rb * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : f) v = dist(rng);
    ops(t, Isa::Scalar).quantize(f.data(), out.data() + static_cast<size_t>(r) * rb, n);
  }
  return out;
}

void bench_vec_dot(benchmark::State& state, DType t, Isa isa, int64_t n) {
  const DType xt = type_info(t).vec_dot_type;
  const std::vector<uint8_t> w = random_rows(t, n, 1, 1), x = random_rows(xt, n, 1, 2);
  const VecDotFn dot = ops(t, isa).vec_dot;
  for (auto _ : state) benchmark::DoNotOptimize(dot(n, w.data(), x.data()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.size()));
}

void bench_matvec(benchmark::State& state, DType t, Isa isa, Shape s) {
  const DType xt = type_info(t).vec_dot_type;
  const std::vector<uint8_t> w = random_rows(t, s.n, s.rows, 1), x = random_rows(xt, s.n, 1, 2);
  const size_t rb = row_bytes(t, s.n);
  std::vector<float> y(static_cast<size_t>(s.rows));
  const VecDotFn dot = ops(t, isa).vec_dot;
  for (auto _ : state) {
    for (int64_t r = 0; r < s.rows; ++r) y[static_cast<size_t>(r)] = dot(s.n, w.data() + static_cast<size_t>(r) * rb, x.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.size()));
}

void bench_gemm(benchmark::State& state, DType t, Isa isa, Shape s, int64_t cols) {
  const DType xt = type_info(t).vec_dot_type;
  const std::vector<uint8_t> w = random_rows(t, s.n, s.rows, 1), x = random_rows(xt, s.n, cols, 2);
  const size_t wb = row_bytes(t, s.n), xb = row_bytes(xt, s.n);
  std::vector<float> y(static_cast<size_t>(s.rows * cols));
  const TypeOps& op = ops(t, isa);
  for (auto _ : state) {
    if (op.gemm) {
      op.gemm(s.n, s.rows, cols, w.data(), wb, x.data(), xb, y.data(), static_cast<size_t>(s.rows));
    } else {
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t r = 0; r < s.rows; ++r)
          y[static_cast<size_t>(j * s.rows + r)] =
              op.vec_dot(s.n, w.data() + static_cast<size_t>(r) * wb, x.data() + static_cast<size_t>(j) * xb);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.size()));
  state.counters["GMAC/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(s.n) *
                                                    static_cast<double>(s.rows) * static_cast<double>(cols) * 1e-9,
                                                benchmark::Counter::kIsRate);
  state.SetLabel(op.gemm ? "gemm" : "vec_dot per pair");
}

const bool registered = [] {
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
    if (!isa_supported(isa)) continue;
    for (DType t : kTypes) {
      const std::string tag = std::string(type_name(t)) + "/" + isa_name(isa) + "/";
      for (int64_t n : {2048, 5632})
        benchmark::RegisterBenchmark(("vec_dot/" + tag + std::to_string(n)).c_str(), bench_vec_dot, t, isa, n);
      for (Shape s : kShapes) {
        const std::string dims = std::to_string(s.n) + "x" + std::to_string(s.rows);
        benchmark::RegisterBenchmark(("matvec/" + tag + dims).c_str(), bench_matvec, t, isa, s)
            ->Unit(benchmark::kMillisecond);
        if (isa != Isa::Scalar)  // the scalar gemm would take minutes per shape
          benchmark::RegisterBenchmark(("gemm/" + tag + dims + "/64").c_str(), bench_gemm, t, isa, s, int64_t{64})
              ->Unit(benchmark::kMillisecond);
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace zen::kernels
