// What the `zen synth` writers share (synth.cpp, synth_embed.cpp, synth_copier.cpp): the
// tokenizer keys and a loop that writes dense, hand-filled tensors in a quantization mix.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/quant_mix.h"
#include "engine/synth.h"
#include "kernels/threadpool.h"

namespace zen::engine::synth_detail {

// splitmix64: advances s and returns the next value (seeds, and the writers' random draws).
uint64_t splitmix(uint64_t& s);

// The shape keys (general.file_type, ARCH.*): p's dimensions with the given head dimension,
// context, RMSNorm epsilon and RoPE base.
void write_shape(GgufWriter& w, const SynthParams& p, const std::string& arch, int64_t hd, int64_t n_ctx, float eps, float rope_base);

// A small SentencePiece-style vocabulary of n_vocab tokens (at least 300): <unk>, <s>, </s>,
// the 256 byte tokens, then characters and letter groups.
void write_synthetic_vocab(GgufWriter& w, int64_t n_vocab);

// Copies src's tokenizer.* keys, padded to n_vocab tokens with unused ones that no text maps
// to. `who` names the caller in errors (e.g. "--embed-from").
void copy_tokenizer_padded(GgufWriter& w, const GgufFile& src, int64_t n_vocab, const std::string& who);

// The tokens src's tokenizer holds.
int64_t tokenizer_size(const GgufFile& src, const std::string& who);

// One tensor: its shape (rows 0: a vector of cols) and how to fill it; dst is zeroed, rows x
// cols F32.
struct DenseSpec {
  std::string name;
  int64_t cols, rows;
  std::function<void(float* dst)> fill;
};

// Adds the tensors to w, each in the type the mix gives it. The fills run when w writes; the
// specs are kept until then.
void add_dense_tensors(GgufWriter& w, std::vector<DenseSpec> specs, Mix mix, int n_layer, int n_gqa,
                       std::shared_ptr<kernels::ThreadPool> pool, const std::function<void(size_t, size_t)>& progress);

}  // namespace zen::engine::synth_detail
