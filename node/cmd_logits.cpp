// zen logits -m MODEL (--tokens 1,2,3 | --prompt TEXT) -o OUT.f32 [-t T]
// Evaluates the tokens as one batch from position 0 and writes little-endian float32 logits
// for every position, row-major [n_tokens][n_vocab].
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/forward.h"
#include "engine/tokenizer.h"
#include "node/cli.h"

namespace zen::cli {

namespace {

struct LogitsOptions {
  std::string model, tokens, prompt, out;
  int threads = 0;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      throw std::invalid_argument("--tokens: '" + item + "' is not an integer");
    }
    if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument("--tokens: '" + item + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) throw std::invalid_argument("--tokens: no token ids given");
  return ids;
}

void run(const LogitsOptions& o) {
  auto model = engine::Model::load(o.model);
  std::vector<int32_t> ids;
  if (!o.tokens.empty()) {
    ids = parse_ids(o.tokens);
  } else {
    auto tok = engine::Tokenizer::from_gguf(model->file().gguf());
    ids = tok->encode(o.prompt, /*add_special=*/true, /*parse_special=*/false);
  }
  engine::ContextParams cp;
  cp.n_ctx = std::max<int>(static_cast<int>(ids.size()), 1);
  cp.n_threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  cp.max_batch = static_cast<int>(ids.size());
  cp.max_seqs = 1;
  engine::Context ctx(model, cp);
  std::vector<engine::BatchRow> rows(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) rows[i] = {0, static_cast<int32_t>(i), ids[i], true};
  std::vector<float> logits;
  ctx.forward(rows, nullptr, logits, true);
  std::ofstream out(o.out, std::ios::binary);
  if (!out) throw std::runtime_error(o.out + ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
  if (!out) throw std::runtime_error(o.out + ": write failed");
  std::fprintf(stderr, "zen: wrote %zu x %lld logits to %s\n", ids.size(), static_cast<long long>(model->hp().n_vocab), o.out.c_str());
}

}  // namespace

void add_logits(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand("logits", "write the logits of every position of a token batch (float32)");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  auto* t = cmd->add_option("--tokens", o->tokens, "comma-separated token ids");
  auto* p = cmd->add_option("--prompt", o->prompt, "text to tokenize (with BOS) instead of --tokens");
  t->excludes(p);
  cmd->add_option("-o,--output", o->out, "output file")->required();
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  cmd->callback([o, t, p] {
    if (t->count() == 0 && p->count() == 0) throw CLI::ValidationError("one of --tokens or --prompt is required");
    run(*o);
  });
}

}  // namespace zen::cli
