// Model hyperparameters and the weights of a contiguous slice of layers, read from GGUF.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "kernels/float_ops.h"
#include "kernels/matmul.h"

namespace zen::engine {

class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Everything comes from `{arch}.*` metadata; defaults only where llama.cpp has them.
struct Hparams {
  std::string arch;         // "llama", "qwen2", "qwen3"
  std::string name;         // general.name
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t head_dim = 0;     // attention.key_length (default n_embd / n_head)
  int64_t head_dim_v = 0;   // attention.value_length (default head_dim)
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  kernels::RopeParams rope;  // n_rot from rope.dimension_count (default head_dim)
  bool qkv_bias = false;     // qwen2
  bool qk_norm = false;      // qwen3

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  int64_t v_dim() const { return n_head_kv * head_dim_v; }
  static Hparams from_gguf(const GgufFile& f);
};

// A weight matrix or vector in the mapped file: `// [rows][cols] type`.
struct Weight {
  std::string name;
  kernels::MatRef mat;         // rows = ne[1], cols = ne[0]
  bool present() const { return mat.data != nullptr; }
  const float* f32() const { return static_cast<const float*>(mat.data); }
};

// One transformer block. Its KV cache lives in the Context (engine/forward.h).
struct Layer {
  int index = 0;
  Weight attn_norm;    // [n_embd] f32
  Weight wq;           // [q_dim][n_embd]
  Weight wk;           // [kv_dim][n_embd]
  Weight wv;           // [v_dim][n_embd]
  Weight bq, bk, bv;   // [q_dim], [kv_dim], [v_dim] f32 (qwen2 only)
  Weight q_norm;       // [head_dim] f32 (qwen3 only)
  Weight k_norm;       // [head_dim] f32 (qwen3 only)
  Weight wo;           // [n_embd][n_head * head_dim_v]
  Weight ffn_norm;     // [n_embd] f32
  Weight ffn_gate;     // [n_ff][n_embd]
  Weight ffn_up;       // [n_ff][n_embd]
  Weight ffn_down;     // [n_embd][n_ff]
};

struct SliceSpec {
  int first_layer = 0;
  int end_layer = -1;   // -1: to the last layer
  bool embed = true;    // load token_embd (first stage)
  bool head = true;     // load output_norm + output (last stage)
};

// The weights a node holds: layers [first_layer, end_layer) plus optionally embedding/head.
class Model {
 public:
  static std::shared_ptr<Model> load(std::shared_ptr<GgufModelFile> file, const SliceSpec& spec);
  static std::shared_ptr<Model> load(const std::string& path, const SliceSpec& spec = {});

  const Hparams& hp() const { return hp_; }
  int first_layer() const { return first_; }
  int end_layer() const { return end_; }
  bool has_embed() const { return tok_embd_.present(); }
  bool has_head() const { return output_.present(); }
  const std::vector<Layer>& layers() const { return layers_; }
  const Weight& tok_embd() const { return tok_embd_; }      // [n_vocab][n_embd]
  const Weight& output_norm() const { return output_norm_; }  // [n_embd] f32
  const Weight& output() const { return output_; }          // [n_vocab][n_embd] (tok_embd when tied)
  const GgufModelFile& file() const { return *file_; }
  // Bytes of tensor data this slice maps (what it will read per token).
  size_t weight_bytes() const { return weight_bytes_; }
  // Matrices rewritten at load into a faster layout of the active ISA level (kernels/repack.h).
  int repacked_count() const { return repacked_; }

 private:
  Weight take(const std::string& name, bool required, int64_t rows, int64_t cols);
  void repack_weights();
  struct Owned;  // anonymous memory holding repacked matrices
  Hparams hp_;
  int first_ = 0, end_ = 0;
  std::shared_ptr<GgufModelFile> file_;
  std::vector<Layer> layers_;
  Weight tok_embd_, output_norm_, output_;
  size_t weight_bytes_ = 0;
  int repacked_ = 0;
  bool tied_ = false;  // output is token_embd
  std::vector<std::shared_ptr<Owned>> owned_;
};

}  // namespace zen::engine
