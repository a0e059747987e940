// Pieces of `zen convert` (engine/convert.h) shared between its source files.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "engine/gguf_writer.h"

namespace zen::engine::convert {

using json = nlohmann::json;

// config.json, reduced to what the GGUF needs.
struct HfConfig {
  std::string hf_arch;   // "LlamaForCausalLM", ...
  std::string arch;      // "llama", "qwen2", "qwen3"
  std::string name;      // _name_or_path ("" when absent)
  int64_t n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0;
  int64_t head_dim = 0;  // config head_dim, else n_embd / n_head
  int64_t n_ctx = 0;     // max_position_embeddings
  double rms_eps = 1e-6;
  double rope_theta = 10000;
  double rope_linear_factor = 0;  // rope_scaling {"type": "linear", "factor": f}
  bool tied = false;              // tie_word_embeddings
  int64_t bos = -1, eos = -1, pad = -1;  // token ids in config.json (fallbacks)
};

// Throws std::runtime_error for an unsupported architecture or a setting the engine cannot
// honour (another activation, biases on llama, rope scaling other than linear, ...).
HfConfig parse_hf_config(const json& j, const std::string& where);
void write_hparams(GgufWriter& w, const HfConfig& c);

// Reads a JSON file (throws with the path on a parse error).
json read_json(const std::string& path);

// Writes the tokenizer.* keys from the checkpoint folder; returns {model, pre}.
struct TokenizerInfo {
  std::string model, pre;
};
TokenizerInfo write_tokenizer(GgufWriter& w, const std::string& dir, const HfConfig& c);

}  // namespace zen::engine::convert
