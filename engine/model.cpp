#include "engine/model.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "kernels/repack.h"

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
    m->tied_ = !m->output_.present();
    if (m->tied_) {  // tied embeddings
      m->output_ = spec.embed ? m->tok_embd_ : m->take("token_embd.weight", true, hp.n_vocab, hp.n_embd);
      if (!m->output_.present()) throw ModelError(g.name + ": no output.weight and no token_embd.weight to tie");
    }
  }
  const char* env = std::getenv("ZEN_REPACK");
  if (!env || std::strcmp(env, "0") != 0) m->repack_weights();
  return m;
}

// Repacked weights, all in one anonymous mapping that starts on a 2 MiB boundary, so that the
// kernel can back nearly all of it with huge pages (fewer TLB misses while streaming the
// weights). One mapping per tensor, at arbitrary addresses, got huge pages only for the 2 MiB
// spans each happened to cover: 372 of 691 MB resident for TinyLlama-shaped Q4_K_M.
struct Model::Owned {
  static constexpr size_t kHuge = size_t{2} << 20;
  void* p = nullptr;
  size_t n = 0;
  explicit Owned(size_t bytes) : n(bytes) {
    void* m = ::mmap(nullptr, n + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw ModelError("cannot allocate " + std::to_string(bytes) + " bytes for repacked weights");
    const auto at = reinterpret_cast<uintptr_t>(m), aligned = (at + kHuge - 1) / kHuge * kHuge;
    if (aligned > at) ::munmap(m, aligned - at);  // the unaligned head and tail back to the system
    ::munmap(reinterpret_cast<void*>(aligned + n), at + kHuge - aligned);  // never empty: aligned < at + kHuge
    p = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
    ::madvise(p, n, MADV_HUGEPAGE);
#endif
  }
  ~Owned() { ::munmap(p, n); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
};

// Every matrix that goes through matmul, in a layout the active ISA level reads faster, when
// it has one: the copy replaces the mapped tensor, whose pages are dropped from this process
// (the page cache keeps them), so resident memory stays about the file's size. A tied output
// matrix is also the embedding: it takes a layout that keeps single rows (get_row), and both
// point at the one copy.
void Model::repack_weights() {
  std::vector<Weight*> mats;
  for (Layer& L : layers_)
    for (Weight* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down}) mats.push_back(w);
  if (output_.present()) mats.push_back(&output_);
  const kernels::Isa isa = kernels::active_isa();
  const unsigned n_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  const std::span<const std::byte> map = file_->map().bytes();
  // Where each repacked matrix goes in the one mapping (64-byte aligned: Q4_K_X4's steps then
  // start on cache lines).
  struct Todo {
    Weight* w;
    kernels::DType to;
    size_t offset;
  };
  std::vector<Todo> todo;
  size_t total = 0;
  for (Weight* w : mats) {
    const std::optional<kernels::DType> to = kernels::repack_target(w->mat.type, isa, w->mat.rows, w == &output_ && tied_);
    if (!to) continue;
    todo.push_back({w, *to, total});
    total += (static_cast<size_t>(w->mat.rows) * w->mat.row_stride + 63) / 64 * 64;
  }
  if (todo.empty()) return;
  auto owned = std::make_shared<Owned>(total);
  for (const Todo& t : todo) {
    Weight* w = t.w;
    const kernels::DType to = t.to;
    const void* old_data = w->mat.data;
    std::byte* dst = static_cast<std::byte*>(owned->p) + t.offset;
    const size_t bytes = static_cast<size_t>(w->mat.rows) * w->mat.row_stride;
    // Rows split over a few threads: repacking reads the whole tensor once, at load.
    std::vector<std::thread> pool;
    const int64_t group = kernels::row_group(to);
    const int64_t per = ((w->mat.rows + n_threads - 1) / n_threads + group - 1) / group * group;
    for (unsigned t = 0; t < n_threads; ++t) {
      const int64_t r0 = per * t, r1 = std::min(w->mat.rows, r0 + per);
      if (r0 >= r1) break;
      pool.emplace_back([&, r0, r1] {
        const size_t off = static_cast<size_t>(r0) * w->mat.row_stride;
        kernels::repack(w->mat.type, to, static_cast<const std::byte*>(old_data) + off, dst + off, r1 - r0, w->mat.cols);
      });
    }
    for (std::thread& t : pool) t.join();
    const auto* at = static_cast<const std::byte*>(old_data);
    if (at >= map.data() && at + bytes <= map.data() + map.size())
      file_->map().dont_need(static_cast<size_t>(at - map.data()), bytes);
    w->mat.data = dst;
    w->mat.type = to;
    if (tok_embd_.mat.data == old_data) tok_embd_.mat = w->mat;
    ++repacked_;
  }
  owned_.push_back(std::move(owned));
}

}  // namespace zen::engine
