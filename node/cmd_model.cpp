// zen synth ... -o OUT.gguf   and   zen quantize IN.gguf OUT.gguf TYPE
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "engine/quantize.h"
#include "engine/synth.h"
#include "node/cli.h"

namespace zen::cli {

namespace {

engine::Mix parse_mix(const std::string& s) {
  auto m = engine::mix_from_name(s);
  if (!m) {
    std::string known;
    for (const auto& n : engine::mix_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown type '" + s + "' (known: " + known + ")");
  }
  return *m;
}

int default_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace

void add_synth(CLI::App& app) {
  auto p = std::make_shared<engine::SynthParams>();
  auto type = std::make_shared<std::string>("f32");
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("synth", "write a model of any shape: random weights, an embedded small model, or a copier");
  cmd->add_option("--arch", p->arch, "llama, qwen2 or qwen3")->capture_default_str();
  cmd->add_option("--n-embd", p->n_embd, "embedding width")->capture_default_str();
  cmd->add_option("--n-layer", p->n_layer, "layers")->capture_default_str();
  cmd->add_option("--n-head", p->n_head, "attention heads")->capture_default_str();
  cmd->add_option("--n-head-kv", p->n_head_kv, "key/value heads")->capture_default_str();
  cmd->add_option("--n-ff", p->n_ff, "feed-forward width")->capture_default_str();
  cmd->add_option("--vocab", p->n_vocab, "vocabulary size")->capture_default_str();
  cmd->add_option("--ctx", p->n_ctx, "training context length")->capture_default_str();
  cmd->add_option("--head-dim", p->head_dim, "head dimension (default n_embd / n_head)");
  cmd->add_flag("--tied", p->tied_output, "no output.weight: the head reuses token_embd");
  cmd->add_option("--type", *type, "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K_M, q4_K_M, q5_K_M, q6_K")
      ->capture_default_str();
  cmd->add_option("--seed", p->seed, "random seed")->capture_default_str();
  cmd->add_option("--vocab-from", p->vocab_from, "copy the tokenizer from this GGUF")->check(CLI::ExistingFile);
  cmd->add_option("--name", p->name, "general.name");
  cmd->add_option("--embed-from", p->embed_from,
                  "not random: compute this small llama model in the given (larger) shape, with its tokenizer")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--copier", p->copier,
                "not random: weights that continue a text by copying it (induction heads), a stand-in for how a "
                "trained model continues a repetitive prompt");
  cmd->add_option("-t,--threads", p->threads, "threads (default: all cores)");
  cmd->add_option("-o,--output", *out, "output file")->required();
  cmd->callback([p, type, out] {
    p->mix = parse_mix(*type);
    if (p->threads <= 0) p->threads = default_threads();
    const bool tty = ::isatty(2);
    engine::write_synth_model(*p, *out, [tty](size_t done, size_t total) {
      if (tty) std::fprintf(stderr, "\rzen synth: tensor %zu/%zu", done, total);
      if (tty && done == total) std::fprintf(stderr, "\n");
    });
    if (p->copier)
      std::fprintf(stderr, "zen synth: wrote %s (copies its context)\n", out->c_str());
    else if (p->embed_from.empty())
      std::fprintf(stderr, "zen synth: wrote %s (random weights: its text will be noise)\n", out->c_str());
    else
      std::fprintf(stderr, "zen synth: wrote %s (computes %s)\n", out->c_str(), p->embed_from.c_str());
  });
}

void add_quantize(CLI::App& app) {
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto type = std::make_shared<std::string>();
  auto threads = std::make_shared<int>(0);
  CLI::App* cmd = app.add_subcommand("quantize", "rewrite a model's matrices in another block format");
  cmd->add_option("input", *in, "input GGUF")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", *out, "output GGUF")->required();
  cmd->add_option("type", *type, "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K_M, q4_K_M, q5_K_M, q6_K")->required();
  cmd->add_option("-t,--threads", *threads, "threads (default: all cores)");
  cmd->callback([in, out, type, threads] {
    const engine::Mix mix = parse_mix(*type);
    const bool tty = ::isatty(2);
    engine::quantize_file(*in, *out, mix, *threads > 0 ? *threads : default_threads(), [tty](const engine::QuantizeProgress& p) {
      if (!tty) return;
      std::fprintf(stderr, "\rzen quantize: [%zu/%zu] %-32s -> %s   ", p.tensors_done, p.tensors_total, p.name,
                   kernels::type_name(p.type));
      if (p.tensors_done == p.tensors_total) std::fprintf(stderr, "\n");
    });
    std::fprintf(stderr, "zen quantize: wrote %s (%s)\n", out->c_str(), engine::mix_name(mix).c_str());
  });
}

}  // namespace zen::cli
