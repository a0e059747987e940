// zen info -m MODEL: architecture, hyperparameters, tensor types, bytes per layer.
#include <cstdio>
#include <map>

#include "engine/model.h"
#include "node/cli.h"

namespace zen::cli {

namespace {

std::string human(double bytes) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) { bytes /= 1024; ++u; }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", bytes, unit[u]);
  return buf;
}

void run(const std::string& path) {
  auto file = engine::GgufModelFile::open(path);
  const engine::GgufFile& g = file->gguf();
  const engine::Hparams hp = engine::Hparams::from_gguf(g);
  std::printf("file          %s (GGUF v%u, %zu tensors, %zu metadata keys, %s)\n", path.c_str(), g.version,
              g.tensors.size(), g.kv.size(), human(static_cast<double>(file->map().bytes().size())).c_str());
  std::printf("name          %s\n", hp.name.c_str());
  std::printf("architecture  %s\n", hp.arch.c_str());
  std::printf("n_vocab       %lld\n", static_cast<long long>(hp.n_vocab));
  std::printf("n_embd        %lld\n", static_cast<long long>(hp.n_embd));
  std::printf("n_layer       %lld\n", static_cast<long long>(hp.n_layer));
  std::printf("n_head        %lld (kv %lld, head_dim %lld, value dim %lld)\n", static_cast<long long>(hp.n_head),
              static_cast<long long>(hp.n_head_kv), static_cast<long long>(hp.head_dim), static_cast<long long>(hp.head_dim_v));
  std::printf("n_ff          %lld\n", static_cast<long long>(hp.n_ff));
  std::printf("n_ctx_train   %lld\n", static_cast<long long>(hp.n_ctx_train));
  std::printf("rope          %s, n_rot %d, freq_base %g, freq_scale %g\n",
              hp.rope.type == kernels::RopeType::Normal ? "normal" : "neox", hp.rope.n_rot, hp.rope.freq_base, hp.rope.freq_scale);
  std::printf("rms_eps       %g\n", hp.rms_eps);
  if (auto tm = g.get_string("tokenizer.ggml.model")) std::printf("tokenizer     %s\n", tm->c_str());

  std::map<std::string, std::pair<size_t, size_t>> by_type;  // type -> (count, bytes)
  std::vector<size_t> layer_bytes(static_cast<size_t>(hp.n_layer), 0);
  size_t other = 0;
  for (const auto& t : g.tensors) {
    auto& e = by_type[kernels::type_name(t.type)];
    e.first++;
    e.second += t.bytes;
    int il = -1;
    if (t.name.rfind("blk.", 0) == 0) il = std::atoi(t.name.c_str() + 4);
    if (il >= 0 && il < hp.n_layer) layer_bytes[static_cast<size_t>(il)] += t.bytes;
    else other += t.bytes;
  }
  std::printf("tensor types ");
  for (const auto& [name, e] : by_type) std::printf(" %s: %zu (%s)", name.c_str(), e.first, human(static_cast<double>(e.second)).c_str());
  std::printf("\n");
  std::printf("non-layer     %s (embedding, output norm, output)\n", human(static_cast<double>(other)).c_str());
  for (size_t il = 0; il < layer_bytes.size(); ++il)
    std::printf("layer %-4zu    %s\n", il, human(static_cast<double>(layer_bytes[il])).c_str());
}

}  // namespace

void add_info(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("info", "print a model's architecture, hyperparameters and tensor sizes");
  cmd->add_option("-m,--model", *path, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->callback([path] { run(*path); });
}

}  // namespace zen::cli
