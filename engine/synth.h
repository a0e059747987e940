// `zen synth`: writes a random-weight model of any shape (tests, benchmarks, demos).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "engine/quant_mix.h"

namespace zen::engine {

struct SynthParams {
  std::string arch = "llama";   // llama, qwen2, qwen3
  int64_t n_embd = 256;
  int64_t n_layer = 4;
  int64_t n_head = 8;
  int64_t n_head_kv = 2;
  int64_t n_ff = 768;
  int64_t n_vocab = 512;
  int64_t n_ctx = 2048;
  int64_t head_dim = 0;         // 0: n_embd / n_head
  float rope_freq_base = 10000;
  bool tied_output = false;
  Mix mix = Mix::F32;
  uint64_t seed = 1234;
  std::string vocab_from{};     // copy tokenizer.* keys from this GGUF (else a synthetic SPM vocab)
  std::string name{};           // general.name (default describes the shape)
  std::string embed_from{};     // a small llama GGUF whose function this shape computes (synth_embed.cpp)
  bool copier = false;          // weights that copy the context (synth_copier.cpp), not random
  int threads = 1;
};

// Writes the model. Weights: matrices 0.02 * N(0,1), norm weights 1 + 0.1 * N(0,1),
// biases 0.1 * N(0,1); each tensor has its own RNG stream derived from the seed and its
// name, so the file is deterministic for a given seed.
// With p.embed_from or p.copier set, the weights are not random: see write_embedded_model and
// write_copier_model.
void write_synth_model(const SynthParams& p, const std::string& path,
                       const std::function<void(size_t done, size_t total)>& progress = {});

// A llama model of p's shape that computes the small llama model p.embed_from: the same logits
// over the small vocabulary (the rest padded, never chosen) at the cost of the large shape.
// Needs every dimension at least the small model's, the same number of key/value heads, and a
// head dimension that is a multiple of the small one. The tokenizer is the small model's.
void write_embedded_model(const SynthParams& p, const std::string& path,
                          const std::function<void(size_t done, size_t total)>& progress = {});

// A llama model of p's shape whose weights are built, not random, to continue a text by
// copying it: at each position it predicts the token that followed the latest earlier
// occurrence of the last two tokens (induction heads, as trained models learn them). A stand-in
// for how a trained model continues a repetitive text, to measure prompt-lookup decoding where
// the drafts are right. Needs 3 layers and an embedding of at least 4 * n_head_kv * head_dim + 1;
// the tokenizer comes from p.vocab_from (padded to n_vocab) or is synthetic. See synth_copier.cpp.
void write_copier_model(const SynthParams& p, const std::string& path,
                        const std::function<void(size_t done, size_t total)>& progress = {});

}  // namespace zen::engine
