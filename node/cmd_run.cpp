// zen run -m MODEL -p PROMPT [-n N] [-t T] [--temp X] [--top-k K] [--top-p P] [--min-p P]
//         [--repeat-penalty R] [--seed S] [-c CTX]
// Prints only the generated text to stdout, streamed; timings go to stderr.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "engine/generate.h"
#include "engine/tokenizer.h"
#include "node/cli.h"

namespace zen::cli {

namespace {

// Set before main() runs: the start-up figure counts from (nearly) the process's launch.
const auto g_launched = std::chrono::steady_clock::now();

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

struct RunOptions {
  std::string model;
  std::string prompt;
  int n_predict = 128;
  int threads = 0;
  int n_ctx = 0;
  bool kv_f16 = false;
  engine::SamplerParams sampler;
};

int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void run(const RunOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  auto model = engine::Model::load(o.model);
  auto tok = engine::Tokenizer::from_gguf(model->file().gguf());
  engine::ContextParams cp;
  cp.n_ctx = o.n_ctx;
  cp.n_threads = o.threads > 0 ? o.threads : default_threads();
  cp.max_seqs = 1;
  cp.kv_f16 = o.kv_f16;
  engine::Context ctx(model, cp);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::vector<int32_t> prompt = tok->encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
  if (prompt.empty()) throw std::invalid_argument("the prompt tokenizes to nothing");
  engine::GenerateParams gp;
  gp.n_predict = o.n_predict;
  gp.sampler = o.sampler;
  gp.is_stop = [&](int32_t id) { return tok->is_eog(id); };
  engine::StreamDecoder dec(*tok);
  engine::GenerateStats st;
  std::optional<std::chrono::steady_clock::time_point> first_token;
  engine::generate(ctx, 0, prompt, gp, [&](int32_t id) {
    if (!first_token) first_token = std::chrono::steady_clock::now();
    if (!tok->is_eog(id)) {
      std::string piece = dec.push(id);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  }, &st);
  std::string rest = dec.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const double gen_tps = st.n_generated > 1 && st.gen_ms > 0 ? (st.n_generated - 1) * 1000.0 / st.gen_ms : 0.0;
  std::fprintf(stderr, "zen: load %.1f ms | prompt %d tokens in %.1f ms (%.1f tokens/s) | generated %d tokens in %.1f ms (%.1f tokens/s) | %d threads\n",
               load_ms, st.n_prompt, st.prompt_ms, st.prompt_ms > 0 ? st.n_prompt * 1000.0 / st.prompt_ms : 0.0,
               st.n_generated, st.gen_ms, gen_tps, cp.n_threads);
  // Start-up and memory: the weights are mapped from the file, never copied, so the peak
  // resident set stays within the file, the KV cache and working buffers.
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  const double first_ms =
      first_token ? std::chrono::duration<double, std::milli>(*first_token - g_launched).count() : 0.0;
  std::fprintf(stderr, "zen: first token %.1f ms after start | peak resident %.1f MiB (model file %.1f MiB, KV cache %.1f MiB)\n",
               first_ms, mib(static_cast<double>(ru.ru_maxrss) * 1024.0),
               mib(static_cast<double>(std::filesystem::file_size(o.model))), mib(static_cast<double>(ctx.kv_bytes())));
}

}  // namespace

void add_sampling_options(CLI::App* cmd, engine::SamplerParams& s) {
  cmd->add_option("--temp", s.temperature, "temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "repetition penalty (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n, "tokens the penalty looks back over")->capture_default_str();
  cmd->add_option("--seed", s.seed, "random seed")->capture_default_str();
}

void add_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "generate text from a prompt on this machine");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-p,--prompt", o->prompt, "prompt text")->required();
  cmd->add_option("-n,--n-predict", o->n_predict, "tokens to generate")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  cmd->add_option("-c,--ctx", o->n_ctx, "context size (default: the model's)");
  cmd->add_flag("--kv-f16", o->kv_f16, "keep the KV cache in F16 (half the memory)");
  add_sampling_options(cmd, o->sampler);
  cmd->callback([o] { run(*o); });
}

}  // namespace zen::cli
