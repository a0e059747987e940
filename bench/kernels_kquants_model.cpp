// TinyLlama-1.1B-shaped Q4_K_M layer through kernels::matmul with a 2-thread pool: decode
// (1 token) and prompt processing (64 tokens). A layer is n_embd 2048, n_ff 5632, 4 KV heads of
// 64: attn_q/attn_output [2048, 2048], attn_k/attn_v [2048, 256], ffn_gate/ffn_up
// [2048, 5632], ffn_down [5632, 2048]; Q4_K except attn_v and ffn_down in Q6_K (the Q4_K_M mix
// gives half the layers Q6_K there; using Q6_K everywhere slightly overstates the bytes).
// Two layers alternate so decode streams ~55 MB of weights from memory, as in a real model.
// Counter tok_s_22L: tokens per second for the model's 22 layers (matmuls only, no attention
// or output head).
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace zen::kernels {
namespace {

struct Weight {
  DType type;
  int64_t rows, cols;  // rows = output features, cols = input features
  std::vector<uint8_t> data;
  MatRef ref() const { return MatRef{type, data.data(), rows, cols, row_bytes(type, cols)}; }
};

Weight make_weight(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 0.02f);
  std::vector<float> row(static_cast<size_t>(cols));
  Weight w{t, rows, cols, std::vector<uint8_t>(row_bytes(t, cols) * static_cast<size_t>(rows))};
  const size_t rb = row_bytes(t, cols);
  const int64_t distinct = 16;  // a few distinct rows, repeated (quantizing 55 MB is slow)
  for (int64_t r = 0; r < rows; ++r) {
    if (r < distinct) {
      for (float& f : row) f = dist(rng);
      ops(t, Isa::Scalar).quantize(row.data(), w.data.data() + rb * static_cast<size_t>(r), cols);
    } else {
      std::copy_n(w.data.data() + rb * static_cast<size_t>(r % distinct), rb, w.data.data() + rb * static_cast<size_t>(r));
    }
  }
  return w;
}

struct Layer {
  std::vector<Weight> w;
  explicit Layer(uint32_t seed) {
    const int64_t e = 2048, ff = 5632, kv = 256;
    w.push_back(make_weight(DType::Q4_K, e, e, seed + 1));    // attn_q
    w.push_back(make_weight(DType::Q4_K, kv, e, seed + 2));   // attn_k
    w.push_back(make_weight(DType::Q6_K, kv, e, seed + 3));   // attn_v
    w.push_back(make_weight(DType::Q4_K, e, e, seed + 4));    // attn_output
    w.push_back(make_weight(DType::Q4_K, ff, e, seed + 5));   // ffn_gate
    w.push_back(make_weight(DType::Q4_K, ff, e, seed + 6));   // ffn_up
    w.push_back(make_weight(DType::Q6_K, e, ff, seed + 7));   // ffn_down
  }
};

void layer_bench(benchmark::State& state, int64_t n_tokens) {
  static const std::unique_ptr<Layer> layers[2] = {std::make_unique<Layer>(10), std::make_unique<Layer>(20)};
  ThreadPool pool(2);
  MatmulScratch scratch;
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(n_tokens * 5632)), y(static_cast<size_t>(n_tokens * 5632));
  for (float& f : x) f = dist(rng);
  size_t bytes = 0;
  int which = 0;
  for (auto _ : state) {
    for (const Weight& w : layers[which]->w) {
      matmul(w.ref(), x.data(), n_tokens, y.data(), pool, scratch);
      bytes += w.data.size();
    }
    which ^= 1;
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["tok_s_22L"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(n_tokens) / 22.0,
                         benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(layer_bench, tinyllama_q4km_decode, int64_t{1})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(layer_bench, tinyllama_q4km_prompt64, int64_t{64})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zen::kernels
