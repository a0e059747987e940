// zen bench -m MODEL [-p 128] [-n 64] [-t T] [-r 3] [--json]
// Prompt processing (pp: P tokens as one batch) and generation (tg: N tokens one at a time
// from an empty context), like llama-bench, plus the weight bytes streamed per second in
// generation and this machine's streaming read bandwidth measured in the same run.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/forward.h"
#include "kernels/membench.h"
#include "kernels/ops.h"
#include "node/cli.h"

namespace zen::cli {

namespace {

struct BenchOptions {
  std::vector<std::string> models;
  int n_prompt = 128;
  int n_gen = 64;
  std::vector<int> threads;
  int reps = 3;
  std::vector<int> batches{1};  // parallel sequences in generation
  bool json = false;
};

struct Stat {
  double mean = 0, sd = 0;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / static_cast<double>(v.size() - 1)) : 0;
  return s;
}

double seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Token ids spread over the vocabulary (speed does not depend on them).
int32_t bench_token(int i, int64_t n_vocab) { return static_cast<int32_t>((static_cast<int64_t>(i) * 37 + 11) % n_vocab); }

double run_pp(engine::Context& ctx, int n) {
  std::vector<engine::BatchRow> rows(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = {0, i, bench_token(i, ctx.hp().n_vocab), i + 1 == n};
  std::vector<float> out;
  ctx.clear_all();
  auto t0 = std::chrono::steady_clock::now();
  ctx.forward(rows, nullptr, out);
  return n / seconds(t0);
}

// Generation of n tokens in each of `batch` sequences, one forward pass per step (the rows of
// all sequences together, as a server batches its streams); returns total tokens/s.
double run_tg(engine::Context& ctx, int n, int batch) {
  std::vector<float> out;
  std::vector<engine::BatchRow> rows(static_cast<size_t>(batch));
  ctx.clear_all();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    for (int b = 0; b < batch; ++b)
      rows[static_cast<size_t>(b)] = {b, i, bench_token(i + 101 * b, ctx.hp().n_vocab), true};
    ctx.forward(rows, nullptr, out);
  }
  return static_cast<double>(n) * batch / seconds(t0);
}

void run(const BenchOptions& o) {
  nlohmann::json results = nlohmann::json::array();
  if (!o.json) {
    std::printf("| model | size | threads | isa | test | tokens/s | GB/s | read bw GB/s | %% of bw |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
  }
  for (const std::string& path : o.models) {
    auto model = engine::Model::load(path);
    const double gb = static_cast<double>(model->weight_bytes()) / 1e9;
    for (int t : o.threads) {
      engine::ContextParams cp;
      cp.n_ctx = std::max(o.n_prompt, o.n_gen) + 8;
      cp.n_threads = t;
      cp.max_batch = std::max(o.n_prompt, *std::max_element(o.batches.begin(), o.batches.end()));
      cp.max_seqs = *std::max_element(o.batches.begin(), o.batches.end());
      engine::Context ctx(model, cp);
      const double bw = kernels::read_bandwidth_gbs(ctx.pool());
      auto report = [&](const std::string& test, const std::vector<double>& tps, bool gen) {
        const Stat s = stat(tps);
        const double gbs = gen ? s.mean * gb : 0;
        nlohmann::json j = {{"model", path}, {"size_bytes", model->weight_bytes()}, {"threads", t},
                            {"isa", kernels::isa_name(kernels::active_isa())}, {"test", test},
                            {"tokens_per_s", s.mean}, {"stddev", s.sd}, {"samples", tps}, {"read_bandwidth_gbs", bw}};
        if (gen) {
          j["weights_gbs"] = gbs;
          j["fraction_of_bandwidth"] = gbs / bw;
        }
        results.push_back(j);
        if (!o.json) {
          std::printf("| %s | %.2f MiB | %d | %s | %s | %.2f ± %.2f | %s | %.1f | %s |\n", model->hp().name.c_str(),
                      static_cast<double>(model->weight_bytes()) / (1 << 20), t, kernels::isa_name(kernels::active_isa()),
                      test.c_str(), s.mean, s.sd, gen ? std::to_string(gbs).substr(0, 5).c_str() : "-", bw,
                      gen ? (std::to_string(100 * gbs / bw).substr(0, 4) + " %").c_str() : "-");
          std::fflush(stdout);
        }
      };
      if (o.n_prompt > 0) {
        run_pp(ctx, o.n_prompt);  // warm-up
        std::vector<double> v;
        for (int r = 0; r < o.reps; ++r) v.push_back(run_pp(ctx, o.n_prompt));
        report("pp" + std::to_string(o.n_prompt), v, false);
      }
      for (int b : o.batches) {
        if (o.n_gen <= 0) break;
        run_tg(ctx, std::min(o.n_gen, 8), b);  // warm-up
        std::vector<double> v;
        for (int r = 0; r < o.reps; ++r) v.push_back(run_tg(ctx, o.n_gen, b));
        // With several sequences, weights are read once per step for all of them.
        report("tg" + std::to_string(o.n_gen) + (b > 1 ? " x" + std::to_string(b) + " seqs" : ""), v, b == 1);
      }
    }
  }
  if (o.json) std::printf("%s\n", results.dump(2).c_str());
}

}  // namespace

void add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prompt processing and generation speed");
  cmd->add_option("-m,--model", o->models, "GGUF model file(s)")->required()->check(CLI::ExistingFile);
  cmd->add_option("-p,--n-prompt", o->n_prompt, "prompt tokens (0 = skip)")->capture_default_str();
  cmd->add_option("-n,--n-gen", o->n_gen, "generated tokens (0 = skip)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "thread counts to test (default: all cores)")->delimiter(',');
  cmd->add_option("-r,--repetitions", o->reps, "repetitions")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("-b,--batch", o->batches, "parallel sequences in generation (list: 1,4,16)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "print JSON instead of a table");
  cmd->callback([o] {
    if (o->threads.empty()) o->threads.push_back(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    run(*o);
  });
}

}  // namespace zen::cli
