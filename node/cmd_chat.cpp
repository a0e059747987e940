// zen chat -m MODEL [--chat-template NAME] [--system TEXT] [-n N] [-t T] [sampling options]
// An interactive terminal chat: the conversation and its KV cache are kept between turns
// (only the new part of the rendered prompt is evaluated), tokens stream as they come,
// generation stops at the model's end-of-turn tokens or stop strings. Ctrl-C stops the
// current answer; Ctrl-C or Ctrl-D at the prompt leaves.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "engine/chat_template.h"
#include "engine/generate.h"
#include "engine/tokenizer.h"
#include "node/cli.h"
#include "node/local_service_text.h"

namespace zen::cli {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

struct ChatOptions {
  std::string model, template_name, system;
  int n_predict = 256;
  int threads = 0;
  int n_ctx = 0;
  engine::SamplerParams sampler;
};

void run(const ChatOptions& o) {
  auto model = engine::Model::load(o.model);
  const engine::GgufFile& g = model->file().gguf();
  auto tok = engine::Tokenizer::from_gguf(g);
  std::string tmpl = o.template_name;
  if (tmpl.empty()) {
    tmpl = engine::detect_chat_template(g);
    if (!engine::has_chat_template(g))
      std::fprintf(stderr, "zen chat: the model has no chat template; using '%s' (choose one with --chat-template)\n", tmpl.c_str());
  } else {
    engine::render_chat(tmpl, {}, false);  // throws for an unknown name, listing the known ones
  }
  const auto stop_tokens = engine::chat_template_stop_tokens(tmpl, *tok);
  const auto stop_strings = engine::chat_template_stop_strings(tmpl);

  engine::ContextParams cp;
  cp.n_ctx = o.n_ctx;
  cp.n_threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cp.max_seqs = 1;
  engine::Context ctx(model, cp);
  std::fprintf(stderr, "zen chat: %s, template %s, context %d. Ctrl-C stops an answer, Ctrl-D quits.\n",
               model->hp().name.c_str(), tmpl.c_str(), ctx.n_ctx());

  std::vector<engine::ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  std::vector<int32_t> cached;  // tokens whose keys/values are in the cache, in order
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);

  std::string line;
  for (;;) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    g_interrupted = 0;
    if (!std::getline(std::cin, line) || g_interrupted) break;
    if (line.empty()) continue;
    messages.push_back({"user", line});
    const std::string prompt = engine::render_chat(tmpl, messages, true);
    std::vector<int32_t> full = tok->encode(prompt, /*add_special=*/true, /*parse_special=*/true);
    // Reuse the cache for the longest common prefix; evaluate only the rest.
    size_t keep = 0;
    while (keep < cached.size() && keep < full.size() && cached[keep] == full[keep]) ++keep;
    if (keep == full.size()) --keep;  // at least one token must be evaluated to get logits
    ctx.truncate_seq(0, static_cast<int32_t>(keep));
    cached.resize(keep);
    if (full.size() + 1 > static_cast<size_t>(ctx.n_ctx())) {
      std::fprintf(stderr, "zen chat: the conversation no longer fits the context (%zu tokens); start a new chat\n", full.size());
      break;
    }
    engine::GenerateParams gp;
    gp.n_predict = std::min<int>(o.n_predict, ctx.n_ctx() - static_cast<int>(full.size()));
    gp.sampler = o.sampler;
    gp.is_stop = [&](int32_t id) {
      return tok->is_eog(id) || std::find(stop_tokens.begin(), stop_tokens.end(), id) != stop_tokens.end();
    };
    engine::StreamDecoder dec(*tok);
    node::StopText stop(stop_strings);  // holds back text that could start a stop string
    std::string answer;
    std::vector<int32_t> generated;
    auto show = [&](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      answer += text;
    };
    const std::vector<int32_t> todo(full.begin() + static_cast<std::ptrdiff_t>(keep), full.end());
    engine::generate(ctx, 0, todo, gp, [&](int32_t id) {
      generated.push_back(id);
      if (gp.is_stop(id)) return false;
      show(stop.push(dec.push(id)));
      return !stop.stopped() && !g_interrupted;
    });
    if (!stop.stopped()) {
      show(stop.push(dec.flush()));
      show(stop.finish());
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (g_interrupted) std::fprintf(stderr, "[stopped]\n");
    // The cache now holds the prompt and every generated token but the last.
    cached = full;
    cached.insert(cached.end(), generated.begin(), generated.end());
    cached.resize(static_cast<size_t>(ctx.seq_len(0)));
    messages.push_back({"assistant", answer});
  }
  std::fputc('\n', stdout);
}

}  // namespace

void add_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "chat with a model in the terminal");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--chat-template", o->template_name, "template name (default: detected from the model)");
  cmd->add_option("--system", o->system, "system message");
  cmd->add_option("-n,--n-predict", o->n_predict, "tokens per answer at most")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  cmd->add_option("-c,--ctx", o->n_ctx, "context size (default: the model's)");
  add_sampling_options(cmd, o->sampler);
  cmd->callback([o] { run(*o); });
}

}  // namespace zen::cli
