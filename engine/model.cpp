#include "engine/model.h"

#include <algorithm>

namespace zen::engine {

namespace {

std::string key(const std::string& arch, const char* suffix) { return arch + "." + suffix; }

int64_t require_int(const GgufFile& f, const std::string& k) {
  const GgufValue* v = f.find(k);
  if (!v) throw ModelError(f.name + ": missing metadata '" + k + "'");
  if (v->type == GgufType::ARRAY)
    throw ModelError(f.name + ": metadata '" + k + "' is a per-layer array; only uniform layers are supported");
  auto i = f.get_int(k);
  return *i;
}

int64_t int_or(const GgufFile& f, const std::string& k, int64_t dflt) {
  const GgufValue* v = f.find(k);
  if (!v) return dflt;
  if (v->type == GgufType::ARRAY)
    throw ModelError(f.name + ": metadata '" + k + "' is a per-layer array; only uniform layers are supported");
  return *f.get_int(k);
}

void check(bool ok, const GgufFile& f, const std::string& what) {
  if (!ok) throw ModelError(f.name + ": " + what);
}

}  // namespace

Hparams Hparams::from_gguf(const GgufFile& f) {
  Hparams hp;
  auto arch = f.get_string("general.architecture");
  if (!arch) throw ModelError(f.name + ": missing metadata 'general.architecture'");
  hp.arch = *arch;
  if (hp.arch != "llama" && hp.arch != "qwen2" && hp.arch != "qwen3")
    throw ModelError(f.name + ": unsupported architecture '" + hp.arch + "' (supported: llama, qwen2, qwen3)");
  hp.name = f.get_string("general.name").value_or("");
  const std::string& a = hp.arch;
  hp.n_embd = require_int(f, key(a, "embedding_length"));
  hp.n_layer = require_int(f, key(a, "block_count"));
  hp.n_head = require_int(f, key(a, "attention.head_count"));
  hp.n_head_kv = int_or(f, key(a, "attention.head_count_kv"), hp.n_head);
  hp.n_ff = require_int(f, key(a, "feed_forward_length"));
  hp.n_ctx_train = int_or(f, key(a, "context_length"), 2048);
  check(hp.n_embd > 0 && hp.n_embd <= (1 << 20), f, "embedding_length out of range");
  check(hp.n_layer > 0 && hp.n_layer <= 4096, f, "block_count out of range");
  check(hp.n_head > 0 && hp.n_head <= 4096, f, "attention.head_count out of range");
  check(hp.n_head_kv > 0 && hp.n_head % hp.n_head_kv == 0, f, "attention.head_count_kv must divide head_count");
  check(hp.n_ff > 0 && hp.n_ff <= (1 << 22), f, "feed_forward_length out of range");
  check(hp.n_ctx_train > 0, f, "context_length must be positive");
  hp.head_dim = int_or(f, key(a, "attention.key_length"), hp.n_embd / hp.n_head);
  hp.head_dim_v = int_or(f, key(a, "attention.value_length"), hp.head_dim);
  check(hp.head_dim > 0 && hp.head_dim <= 1024 && hp.head_dim % 2 == 0, f, "attention.key_length must be even and <= 1024");
  check(hp.head_dim_v > 0 && hp.head_dim_v <= 1024, f, "attention.value_length out of range");
  hp.rms_eps = static_cast<float>(f.get_float(key(a, "attention.layer_norm_rms_epsilon")).value_or(1e-5));
  check(hp.rms_eps > 0, f, "attention.layer_norm_rms_epsilon must be positive");
  hp.rope.n_rot = static_cast<int>(int_or(f, key(a, "rope.dimension_count"), hp.head_dim));
  check(hp.rope.n_rot > 0 && hp.rope.n_rot <= hp.head_dim && hp.rope.n_rot % 2 == 0, f,
        "rope.dimension_count must be even and at most the head dimension");
  hp.rope.freq_base = static_cast<float>(f.get_float(key(a, "rope.freq_base")).value_or(10000.0));
  check(hp.rope.freq_base > 0, f, "rope.freq_base must be positive");
  // Linear rope scaling: positions are multiplied by 1/factor.
  const std::string scaling = f.get_string(key(a, "rope.scaling.type")).value_or("");
  double factor = f.get_float(key(a, "rope.scaling.factor")).value_or(0.0);
  if (factor == 0.0) factor = f.get_float(key(a, "rope.scale_linear")).value_or(0.0);
  if (!scaling.empty() && scaling != "none" && scaling != "linear")
    throw ModelError(f.name + ": unsupported rope scaling type '" + scaling + "' (supported: none, linear)");
  if (scaling != "none" && factor > 0) hp.rope.freq_scale = static_cast<float>(1.0 / factor);
  hp.rope.type = hp.arch == "llama" ? kernels::RopeType::Normal : kernels::RopeType::Neox;
  hp.qkv_bias = hp.arch == "qwen2";
  hp.qk_norm = hp.arch == "qwen3";

  // Vocabulary size: explicit key, else the embedding's rows, else the token list.
  hp.n_vocab = int_or(f, key(a, "vocab_size"), 0);
  if (hp.n_vocab == 0) {
    if (const TensorInfo* t = f.find_tensor("token_embd.weight"); t && t->n_dims >= 2) hp.n_vocab = t->ne[1];
    else if (auto* toks = f.get_string_array("tokenizer.ggml.tokens")) hp.n_vocab = static_cast<int64_t>(toks->size());
  }
  check(hp.n_vocab > 0, f, "cannot determine the vocabulary size");
  return hp;
}

Weight Model::take(const std::string& name, bool required, int64_t rows, int64_t cols) {
  const GgufFile& g = file_->gguf();
  const TensorInfo* t = g.find_tensor(name);
  if (!t) {
    if (required) throw ModelError(g.name + ": missing tensor '" + name + "'");
    return {};
  }
  const bool vec = rows == 0;
  const int64_t want1 = vec ? 1 : rows;
  if (t->ne[0] != cols || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1)
    throw ModelError(g.name + ": tensor '" + name + "' has shape [" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                     "], expected [" + std::to_string(cols) + ", " + std::to_string(want1) + "]");
  if (vec && t->type != kernels::DType::F32)
    throw ModelError(g.name + ": tensor '" + name + "' must be f32, is " + kernels::type_name(t->type));
  Weight w;
  w.name = name;
  w.mat.type = t->type;
  w.mat.data = file_->tensor_data(*t);
  w.mat.rows = want1;
  w.mat.cols = cols;
  w.mat.row_stride = kernels::row_bytes(t->type, cols);
  weight_bytes_ += t->bytes;
  file_->map().will_need(g.data_offset + t->offset, t->bytes);
  return w;
}

std::shared_ptr<Model> Model::load(const std::string& path, const SliceSpec& spec) {
  return load(GgufModelFile::open(path), spec);
}

std::shared_ptr<Model> Model::load(std::shared_ptr<GgufModelFile> file, const SliceSpec& spec) {
  auto m = std::make_shared<Model>();
  m->file_ = std::move(file);
  const GgufFile& g = m->file_->gguf();
  m->hp_ = Hparams::from_gguf(g);

  const Hparams& hp = m->hp_;
  m->first_ = spec.first_layer;
  m->end_ = spec.end_layer < 0 ? static_cast<int>(hp.n_layer) : spec.end_layer;
  if (m->first_ < 0 || m->first_ > m->end_ || m->end_ > hp.n_layer)
    throw ModelError(g.name + ": layer range [" + std::to_string(m->first_) + ", " + std::to_string(m->end_) +
                     ") is not inside [0, " + std::to_string(hp.n_layer) + ")");

  if (spec.embed) m->tok_embd_ = m->take("token_embd.weight", true, hp.n_vocab, hp.n_embd);
  for (int il = m->first_; il < m->end_; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    Layer L;
    L.index = il;
    L.attn_norm = m->take(p + "attn_norm.weight", true, 0, hp.n_embd);
    L.wq = m->take(p + "attn_q.weight", true, hp.q_dim(), hp.n_embd);
    L.wk = m->take(p + "attn_k.weight", true, hp.kv_dim(), hp.n_embd);
    L.wv = m->take(p + "attn_v.weight", true, hp.v_dim(), hp.n_embd);
    L.bq = m->take(p + "attn_q.bias", hp.qkv_bias, 0, hp.q_dim());
    L.bk = m->take(p + "attn_k.bias", hp.qkv_bias, 0, hp.kv_dim());
    L.bv = m->take(p + "attn_v.bias", hp.qkv_bias, 0, hp.v_dim());
    if (hp.qk_norm) {
      L.q_norm = m->take(p + "attn_q_norm.weight", true, 0, hp.head_dim);
      L.k_norm = m->take(p + "attn_k_norm.weight", true, 0, hp.head_dim);
    }
    L.wo = m->take(p + "attn_output.weight", true, hp.n_embd, hp.n_head * hp.head_dim_v);
    L.ffn_norm = m->take(p + "ffn_norm.weight", true, 0, hp.n_embd);
    L.ffn_gate = m->take(p + "ffn_gate.weight", true, hp.n_ff, hp.n_embd);
    L.ffn_up = m->take(p + "ffn_up.weight", true, hp.n_ff, hp.n_embd);
    L.ffn_down = m->take(p + "ffn_down.weight", true, hp.n_embd, hp.n_ff);
    m->layers_.push_back(std::move(L));
  }
  if (spec.head) {
    m->output_norm_ = m->take("output_norm.weight", true, 0, hp.n_embd);
    m->output_ = m->take("output.weight", false, hp.n_vocab, hp.n_embd);
    if (!m->output_.present()) {  // tied embeddings
      m->output_ = spec.embed ? m->tok_embd_ : m->take("token_embd.weight", true, hp.n_vocab, hp.n_embd);
      if (!m->output_.present()) throw ModelError(g.name + ": no output.weight and no token_embd.weight to tie");
    }
  }
  return m;
}

}  // namespace zen::engine
