// zen convert CHECKPOINT_DIR -o OUT.gguf [--outtype auto|f32|f16|bf16|q8_0|q4_K_M|...] [-t T]
#include <cstdio>
#include <memory>
#include <thread>

#include "engine/convert.h"
#include "engine/quant_mix.h"
#include "node/cli.h"

namespace zen::cli {

void add_convert(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto opts = std::make_shared<engine::ConvertOptions>();
  std::string types = "auto";
  for (const auto& n : engine::mix_names()) types += ", " + n;
  CLI::App* cmd = app.add_subcommand("convert", "convert a Hugging Face checkpoint folder (safetensors) to GGUF");
  cmd->add_option("checkpoint", *dir, "folder with config.json, *.safetensors and the tokenizer")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-o,--output", *out, "output GGUF file")->required();
  cmd->add_option("--outtype", opts->outtype, "output type: " + types + " (auto: the checkpoint's float type)")
      ->capture_default_str();
  cmd->add_option("--name", opts->name, "general.name (default: from config.json or the folder name)");
  cmd->add_option("-t,--threads", opts->threads, "threads (default: all cores)");
  cmd->callback([dir, out, opts] {
    if (opts->threads <= 0) opts->threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const engine::ConvertSummary s =
        engine::convert_checkpoint(*dir, *out, *opts, [](const engine::ConvertProgress& p) {
          std::fprintf(stderr, "\rzen convert: [%zu/%zu] %-32s -> %-5s", p.done, p.total, p.name, kernels::type_name(p.type));
          if (p.done == p.total) std::fprintf(stderr, "\n");
        });
    std::fprintf(stderr, "zen convert: wrote %s: arch %s, %zu tensors (%s%s), tokenizer %s%s%s\n", out->c_str(),
                 s.arch.c_str(), s.n_tensors, s.outtype.c_str(), s.tied_output ? ", tied embeddings" : "",
                 s.tokenizer.c_str(), s.pre.empty() ? "" : " pre ", s.pre.c_str());
  });
}

}  // namespace zen::cli
