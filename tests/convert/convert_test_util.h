// Small shared helpers of the convert tests.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/forward.h"
#include "tests/convert/hf_checkpoint.h"

namespace zen::test {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& label) {
    path_ = fs::temp_directory_path() / ("zen_convert_" + std::to_string(::getpid()) + "_" + label);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& p, const std::vector<std::byte>& b) {
  write_text(p, std::string(reinterpret_cast<const char*>(b.data()), b.size()));
}

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The tokenizer training text: the story file used by the perplexity tests.
inline std::string training_corpus() { return read_text(fs::path(ZEN_SOURCE_DIR) / "tests/convert/data/story.txt"); }

// Hugging Face tensor name -> GGUF tensor name (the standard llama.cpp names).
inline std::string gguf_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::pair<const char*, const char*> layer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},   {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},     {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},     {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},         {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},         {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},           {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  const std::string pre = "model.layers.";
  const size_t dot = hf.find('.', pre.size());
  const std::string n = hf.substr(pre.size(), dot - pre.size()), rest = hf.substr(dot + 1);
  for (const auto& [h, g] : layer)
    if (rest == h) return "blk." + n + "." + g;
  throw std::runtime_error("no GGUF name for " + hf);
}

// The documented llama layout change: GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i.
inline std::vector<float> permute_rows_for_gguf(const std::vector<float>& hf, int64_t heads, int64_t hd, int64_t cols) {
  std::vector<float> out(hf.size());
  for (int64_t g = 0; g < heads * hd; ++g) {
    const int64_t h = g / hd, i = (g % hd) / 2, j = g % 2;
    const int64_t src = h * hd + j * (hd / 2) + i;
    std::copy_n(&hf[static_cast<size_t>(src * cols)], cols, &out[static_cast<size_t>(g * cols)]);
  }
  return out;
}
// Its inverse (GGUF -> HF), for writing a GGUF model out in HF layout.
inline std::vector<float> unpermute_rows_to_hf(const std::vector<float>& gg, int64_t heads, int64_t hd, int64_t cols) {
  std::vector<float> out(gg.size());
  for (int64_t g = 0; g < heads * hd; ++g) {
    const int64_t h = g / hd, i = (g % hd) / 2, j = g % 2;
    std::copy_n(&gg[static_cast<size_t>(g * cols)], cols, &out[static_cast<size_t>((h * hd + j * (hd / 2) + i) * cols)]);
  }
  return out;
}

// Logits of every position of `ids` evaluated from position 0 by the engine.
inline std::vector<float> engine_logits(const std::string& path, const std::vector<int32_t>& ids, int threads = 2) {
  auto model = engine::Model::load(path);
  engine::ContextParams cp;
  cp.n_ctx = static_cast<int>(ids.size());
  cp.n_threads = threads;
  engine::Context ctx(model, cp);
  std::vector<engine::BatchRow> rows(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) rows[i] = {0, static_cast<int32_t>(i), ids[i], true};
  std::vector<float> out;
  ctx.forward(rows, nullptr, out, true);
  return out;
}

}  // namespace zen::test
