// Tokenizer micro-benchmarks on llama.cpp's vocabulary files (skipped without the reference data):
// load time of the 150k-token qwen2 vocabulary (parse + tokenizer build) and encode throughput
// of each tokenizer family on the llama.cpp test-vector text.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

#ifndef ZEN_TESTDATA_DIR
#define ZEN_TESTDATA_DIR "../shared/testdata"
#endif

namespace {

using zen::engine::GgufFile;
using zen::engine::GgufModelFile;
using zen::engine::Tokenizer;

// $ZEN_TESTDATA_DIR, else the build's definition, else ../shared/testdata from the working directory.
std::filesystem::path vocab_path(const std::string& name) {
  const char* env = std::getenv("ZEN_TESTDATA_DIR");
  const std::filesystem::path dir = env && *env ? env : ZEN_TESTDATA_DIR;
  return dir / "tokenizer" / ("ggml-vocab-" + name + ".gguf");
}

std::string text_sample() {
  std::ifstream f(vocab_path("qwen2").string() + ".inp", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  std::string out;
  while (!s.empty() && out.size() < (256u << 10)) out += s;  // ~256 KiB of mixed-script text
  return out;
}

// Open + parse the GGUF + build the tokenizer: what a node pays at start-up.
void BM_LoadVocab(benchmark::State& state, const std::string& name) {
  const auto p = vocab_path(name);
  if (!std::filesystem::exists(p)) return state.SkipWithError(("missing " + p.string()).c_str());
  for (auto _ : state) {
    auto file = GgufModelFile::open(p.string());
    auto tok = Tokenizer::from_gguf(file->gguf());
    benchmark::DoNotOptimize(tok->n_vocab());
  }
}

// Only the tokenizer build from already-parsed metadata.
void BM_TokenizerFromGguf(benchmark::State& state, const std::string& name) {
  const auto p = vocab_path(name);
  if (!std::filesystem::exists(p)) return state.SkipWithError(("missing " + p.string()).c_str());
  auto file = GgufModelFile::open(p.string());
  for (auto _ : state) {
    auto tok = Tokenizer::from_gguf(file->gguf());
    benchmark::DoNotOptimize(tok->n_vocab());
  }
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const auto p = vocab_path(name);
  if (!std::filesystem::exists(p)) return state.SkipWithError(("missing " + p.string()).c_str());
  auto file = GgufModelFile::open(p.string());
  auto tok = Tokenizer::from_gguf(file->gguf());
  const std::string text = text_sample();
  tok->encode("warm up", false, false);  // builds lazy Unicode tables outside the timing
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text, false, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n_tokens * state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_LoadVocab, qwen2, std::string("qwen2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadVocab, llama_bpe, std::string("llama-bpe"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_LoadVocab, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TokenizerFromGguf, qwen2, std::string("qwen2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, qwen2, std::string("qwen2"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama_bpe, std::string("llama-bpe"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama_spm, std::string("llama-spm"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bert_bge, std::string("bert-bge"))->Unit(benchmark::kMillisecond);

}  // namespace
