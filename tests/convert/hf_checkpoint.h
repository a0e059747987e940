// Test helpers: small Hugging Face checkpoints written from scratch (config.json, safetensors,
// tokenizer.model or tokenizer.json), and straightforward reference implementations of what
// the source definitions mean (HF forward with rotate-half RoPE, SentencePiece and byte-level
// BPE encoding), independent of the engine's code.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/convert_spm.h"
#include "engine/safetensors.h"

namespace zen::test {

namespace fs = std::filesystem;

struct HfSpec {
  std::string hf_arch = "LlamaForCausalLM";
  int64_t n_vocab = 0;  // 0: the tokenizer's size
  int64_t n_embd = 64, n_layer = 2, n_head = 4, n_head_kv = 2, n_ff = 96;
  int64_t head_dim = 0;  // 0: n_embd / n_head and no head_dim key
  int64_t n_ctx = 256;
  double rope_theta = 10000, rms_eps = 1e-5;
  bool tied = false;
  engine::StDType dtype = engine::StDType::F32;
  int shards = 1;
  uint64_t seed = 1;

  int64_t hd() const { return head_dim ? head_dim : n_embd / n_head; }
  bool qkv_bias() const { return hf_arch == "Qwen2ForCausalLM"; }
  bool qk_norm() const { return hf_arch == "Qwen3ForCausalLM"; }
};

// HF tensors by name: row-major shape and values (already rounded to spec.dtype).
struct HfWeights {
  std::map<std::string, std::vector<int64_t>> shape;
  std::map<std::string, std::vector<float>> data;
  const std::vector<float>& at(const std::string& n) const { return data.at(n); }
};

// Every tensor of the architecture in HF naming, with the scale/offset random_weights draws with.
struct HfTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  float scale = 0, offset = 0;
};
std::vector<HfTensorSpec> hf_tensor_list(const HfSpec& s);
HfWeights random_weights(const HfSpec& s);
// config.json + *.safetensors (+ index when spec.shards > 1).
void write_checkpoint(const fs::path& dir, const HfSpec& s, const HfWeights& w);
void write_config(const fs::path& dir, const HfSpec& s);
void write_text(const fs::path& p, const std::string& text);

// Reference HF forward (double precision): logits [tokens][n_vocab] for one sequence from 0.
std::vector<float> hf_forward(const HfSpec& s, const HfWeights& w, const std::vector<int32_t>& tokens);

// --- SentencePiece ---
// A BPE-style SentencePiece model trained on `corpus` by merging frequent pairs: <unk>, <s>,
// </s>, 256 byte pieces, the corpus characters, then `n_merges` merged pieces (score -rank).
engine::SpmModel train_spm(const std::string& corpus, int n_merges);
// Score-driven SentencePiece encoding: the highest-scoring adjacent pair whose concatenation is
// a piece merges first (leftmost on ties); pieces that are no token fall back to <0xXX> bytes.
std::vector<int32_t> spm_encode(const engine::SpmModel& m, const std::string& text, bool add_bos);

// --- byte-level BPE ---
struct TestBpe {
  std::string hf_regex;       // Split pattern written to tokenizer.json ("" = ByteLevel use_regex)
  std::string ecma_regex;     // the same split for ASCII text, as a std::regex (ECMAScript) pattern
  bool ignore_merges = false;
  bool bos_template = false;  // post_processor adds <|begin_of_text|>
  bool clean_spaces = true;
  std::vector<std::string> tokens;  // id -> byte-level text
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<std::pair<int32_t, std::string>> added;  // special tokens (id, content)
};
extern const char* const kGpt2Ecma;
extern const char* const kQwen2Hf;
extern const char* const kQwen2Ecma;
extern const char* const kLlama3Hf;
extern const char* const kLlama3Ecma;

TestBpe train_bpe(const std::string& corpus, int n_merges, std::string hf_regex, std::string ecma_regex);
void write_bpe_tokenizer(const fs::path& dir, const TestBpe& b);
std::vector<int32_t> bpe_encode(const TestBpe& b, const std::string& text);
std::string byte_level(const std::string& raw);  // GPT-2 bytes -> printable code points

}  // namespace zen::test
