// Forward pass over a model slice: layers [first, end) of a batch of rows, each row one
// (sequence, position) with a token id (when the slice embeds) or an input hidden state.
// A single-node run is this call over all layers with embedding and head.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/model.h"
#include "kernels/threadpool.h"

namespace zen::engine {

struct BatchRow {
  int32_t seq = 0;
  int32_t pos = 0;
  int32_t token = 0;     // used when the slice has the embedding
  bool output = false;   // produce logits (or hidden state) for this row
};

struct ContextParams {
  int n_ctx = 0;          // positions per sequence (0: the model's training context)
  int n_threads = 1;
  int max_batch = 512;    // rows per internal pass; longer batches are split
  int max_seqs = 64;      // live sequences at once
  bool kv_f16 = false;    // keep keys/values as IEEE half (half the memory; F32 by default)
};

// Debug hook: called with every named intermediate ("attn_norm", "q", "kq_out", ...) of a
// layer (-1 for embedding/head): name, layer, rows, row length, data.
using DebugHook = std::function<void(const char* name, int layer, int64_t rows, int64_t cols, const float* data)>;

class Context {
 public:
  Context(std::shared_ptr<const Model> model, const ContextParams& params);
  ~Context();

  const Model& model() const { return *model_; }
  const Hparams& hp() const { return model_->hp(); }
  int n_ctx() const { return n_ctx_; }
  kernels::ThreadPool& pool() { return *pool_; }

  // Runs the slice. `hidden_in` ([rows][n_embd]) is required when the slice has no
  // embedding and ignored otherwise. Output, for the rows with output=true (all rows if
  // `all_outputs`), in row order: logits [n_out][n_vocab] when the slice has the head,
  // else hidden states [n_out][n_embd].
  void forward(std::span<const BatchRow> rows, const float* hidden_in, std::vector<float>& out,
               bool all_outputs = false);

  // Sequence management. Positions of a sequence must be fed in order from 0.
  int32_t seq_len(int32_t seq) const;
  void clear_seq(int32_t seq);
  void truncate_seq(int32_t seq, int32_t n_pos);  // keep positions [0, n_pos)
  void clear_all();
  size_t kv_bytes() const;  // KV memory currently held

  void set_debug_hook(DebugHook hook) { debug_ = std::move(hook); }

 private:
  struct SeqCache;
  struct Scratch;
  SeqCache& seq_cache(int32_t seq);
  void forward_chunk(std::span<const BatchRow> rows, const float* hidden_in, float* out, bool all_outputs);
  void attention(const Layer& L, size_t layer_slot, std::span<const BatchRow> rows);
  void dump(const char* name, int layer, int64_t rows, int64_t cols, const float* data) const {
    if (debug_) debug_(name, layer, rows, cols, data);
  }

  std::shared_ptr<const Model> model_;
  int n_ctx_ = 0;
  int max_batch_ = 0;
  int max_seqs_ = 0;
  bool kv_f16_ = false;
  std::unique_ptr<kernels::ThreadPool> pool_;
  std::unordered_map<int32_t, std::unique_ptr<SeqCache>> seqs_;
  std::unique_ptr<Scratch> s_;
  DebugHook debug_;
};

}  // namespace zen::engine
