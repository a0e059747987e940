// zen perplexity -m MODEL -f TEXT [--ctx N] [--kl-base BASE.gguf] [--chunks K] [-t T]
// Perplexity over windows of --ctx tokens, second half of each window scored (engine/perplexity.h);
// with --kl-base also the mean KL(base || model) and top-1 agreement on the same windows.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "engine/perplexity.h"
#include "engine/tokenizer.h"
#include "node/cli.h"

namespace zen::cli {

namespace {

struct PplOptions {
  std::string model, text, base;
  int ctx = 512;
  size_t chunks = 0;
  int threads = 0;
};

void run_perplexity(const PplOptions& o) {
  std::ifstream in(o.text, std::ios::binary);
  if (!in) throw std::runtime_error(o.text + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  auto model = engine::Model::load(o.model);
  auto tok = engine::Tokenizer::from_gguf(model->file().gguf());
  const std::vector<int32_t> ids = tok->encode(ss.str(), /*add_special=*/true, /*parse_special=*/false);
  std::shared_ptr<engine::Model> base;
  if (!o.base.empty()) {
    base = engine::Model::load(o.base);
    const auto* a = model->file().gguf().get_string_array("tokenizer.ggml.tokens");
    const auto* b = base->file().gguf().get_string_array("tokenizer.ggml.tokens");
    if (a && b && *a != *b) throw std::runtime_error("--kl-base: the two models have different vocabularies");
  }
  engine::PerplexityParams p;
  p.n_ctx = o.ctx;
  p.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  p.bos = tok->add_bos() ? tok->bos() : -1;
  p.max_windows = o.chunks;
  std::fprintf(stderr, "zen perplexity: %zu tokens, %zu windows of %d (second half of each scored)\n", ids.size(),
               o.chunks ? std::min(o.chunks, ids.size() / static_cast<size_t>(o.ctx)) : ids.size() / static_cast<size_t>(o.ctx),
               o.ctx);
  const engine::PerplexityResult r = engine::compute_perplexity(model, base, ids, p, [](size_t done, size_t, double ppl) {
    std::fprintf(stderr, "[%zu]%.4f,", done, ppl);
  });
  std::fprintf(stderr, "\n");
  std::printf("model      %s\n", o.model.c_str());
  std::printf("windows    %zu x %d tokens, %zu predictions scored\n", r.n_windows, o.ctx, r.n_scored);
  std::printf("PPL        %.4f +/- %.4f   (mean NLL %.5f nats)\n", r.ppl, r.ppl * r.nll_stderr, r.nll);
  if (base) {
    std::printf("base       %s\n", o.base.c_str());
    std::printf("base PPL   %.4f   ln(PPL/base PPL) %.5f\n", r.base_ppl, r.nll - r.base_nll);
    std::printf("KL         mean %.6f  max %.6f nats  (KL(base || model))\n", r.kl_mean, r.kl_max);
    std::printf("top-1      %.2f %% agree\n", 100.0 * r.top1_agree);
  }
}

}  // namespace

void add_perplexity(CLI::App& app) {
  auto o = std::make_shared<PplOptions>();
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity over a text file; with --kl-base, KL divergence against a base model");
  cmd->add_option("-m,--model", o->model, "GGUF model")->required()->check(CLI::ExistingFile);
  cmd->add_option("-f,--file", o->text, "text file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--ctx", o->ctx, "window length in tokens")->capture_default_str();
  cmd->add_option("--kl-base", o->base, "base model (e.g. the F16 or F32 file) for KL divergence and top-1 agreement")
      ->check(CLI::ExistingFile);
  cmd->add_option("--chunks", o->chunks, "evaluate at most this many windows (default: all)");
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  cmd->callback([o] { run_perplexity(*o); });
}

}  // namespace zen::cli
