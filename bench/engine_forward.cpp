// Decode steps of n rows (n sequences, one token each) through a Q4_K_M / Q8_0 model slice:
// how the cost of a pass grows with the batch (memory-bound decode should grow slowly).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>

#include "engine/forward.h"
#include "engine/synth.h"

namespace {

std::shared_ptr<zen::engine::Model> model_for(zen::engine::Mix mix) {
  static std::map<int, std::shared_ptr<zen::engine::Model>> cache;
  auto& m = cache[static_cast<int>(mix)];
  if (!m) {
    zen::engine::SynthParams p;
    p.n_embd = 2048;
    p.n_layer = 4;
    p.n_head = 32;
    p.n_head_kv = 4;
    p.n_ff = 5632;
    p.n_vocab = 32000;
    p.mix = mix;
    p.threads = 2;
    const auto path = std::filesystem::temp_directory_path() /
                      ("zen-bench-forward-" + zen::engine::mix_name(mix) + ".gguf");
    if (!std::filesystem::exists(path)) zen::engine::write_synth_model(p, path.string());
    m = zen::engine::Model::load(path.string());
  }
  return m;
}

void decode_rows(benchmark::State& state, zen::engine::Mix mix) {
  const int rows = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  zen::engine::ContextParams cp;
  cp.n_ctx = 512;
  cp.n_threads = threads;
  cp.max_seqs = rows;
  zen::engine::Context ctx(model_for(mix), cp);
  std::vector<float> out;
  int pos = 0;
  for (auto _ : state) {
    if (pos >= 500) {
      ctx.clear_all();
      pos = 0;
    }
    std::vector<zen::engine::BatchRow> b;
    for (int s = 0; s < rows; ++s) b.push_back({s, pos, (s * 31 + pos) % 32000, true});
    ctx.forward(b, nullptr, out);
    ++pos;
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_CAPTURE(decode_rows, q4_K_M, zen::engine::Mix::Q4_K_M)
    ->ArgsProduct({{1, 2, 4, 8, 16}, {1, 2}})->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(decode_rows, q8_0, zen::engine::Mix::Q8_0)
    ->ArgsProduct({{1, 2, 4, 8}, {2}})->Unit(benchmark::kMillisecond);
