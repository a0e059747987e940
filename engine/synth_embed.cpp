// `zen synth --embed-from SMALL.gguf`: a model of any (larger) llama shape that computes what a
// small llama model computes. Its cost is the large shape's (every matrix is read and
// multiplied in full), its text the small model's: a benchmark model that behaves like a
// trained one (it repeats itself, a draft agrees with it), where random weights write noise.
//
// The small model lives in a subspace of the large one:
// - residual dims 0 .. n_s-1 are the small model's; the other dims stay zero, except one
//   "bias" dim that holds a constant c from the embedding on (no layer writes it), which the
//   output rows of padded tokens weigh with a large negative weight so they never win;
// - RMSNorm averages over n_b dims instead of n_s: the norm weights are scaled by
//   sqrt(n_s / n_b), and rms_eps becomes (n_s * eps - c^2) / n_b, which also takes the bias
//   dim's c^2 back out: the small model's norm exactly (c^2 < n_s * eps keeps eps positive);
// - small kv head j is large kv head j, small query head j*g_s + t is large head j*g_b + t;
// - head dims: RoPE rotates pairs (2p, 2p+1) at frequency base^(-2p / head_dim), so small pair
//   i goes to large pair i * (hd_b / hd_s), which turns at the same frequency; queries are
//   scaled by sqrt(hd_b / hd_s) to undo the larger 1 / sqrt(head_dim);
// - feed-forward units 0 .. f_s-1 are the small ones; layers past the small model's are zero
//   matrices (the residual passes through them unchanged);
// - the vocabulary is the small one padded with unused tokens.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/quantize.h"
#include "engine/synth.h"
#include "engine/synth_internal.h"
#include "kernels/threadpool.h"

namespace zen::engine {

using kernels::DType;

namespace {

// Padded tokens' output weight on the bias dim: their logit is about -5e6 * c * sqrt(n_b / n_s)
// / rms(small residual); 5e6 still fits Q8_0's fp16 block scale (65504 * 127).
constexpr float kPadLogitWeight = -5e6f;

struct Small {
  std::shared_ptr<GgufModelFile> file;
  int64_t n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_vocab = 0, head_dim = 0, n_ctx = 0;
  float eps = 1e-5f, rope_base = 10000;
  kernels::ThreadPool* pool = nullptr;

  bool has(const std::string& name) const { return file->gguf().find_tensor(name) != nullptr; }
  // The tensor as F32 rows: ne[1] rows of ne[0] values.
  std::vector<float> read(const std::string& name, int64_t cols, int64_t rows) const {
    const TensorInfo* t = file->gguf().find_tensor(name);
    if (!t) throw std::invalid_argument("--embed-from: the small model has no tensor " + name);
    if (t->ne[0] != cols || t->n_elements() != cols * rows)
      throw std::invalid_argument("--embed-from: " + name + " has an unexpected shape");
    std::vector<float> out(static_cast<size_t>(cols * rows));
    convert_rows(t->type, file->tensor_data(*t), DType::F32, out.data(), rows, cols, *pool);
    return out;
  }
};

int64_t need_int(const GgufFile& g, const std::string& key) {
  const auto v = g.get_int(key);
  if (!v || *v <= 0) throw std::invalid_argument("--embed-from: the small model has no valid " + key);
  return *v;
}

}  // namespace

void write_embedded_model(const SynthParams& p, const std::string& path, const std::function<void(size_t, size_t)>& progress) {
  if (p.arch != "llama") throw std::invalid_argument("--embed-from writes llama models only (--arch llama)");
  auto pool = std::make_shared<kernels::ThreadPool>(std::max(1, p.threads));
  Small s;
  s.pool = pool.get();
  s.file = GgufModelFile::open(p.embed_from);
  const GgufFile& g = s.file->gguf();
  if (g.get_string("general.architecture").value_or("") != "llama")
    throw std::invalid_argument("--embed-from: " + p.embed_from + " is not a llama model");
  s.n_embd = need_int(g, "llama.embedding_length");
  s.n_layer = need_int(g, "llama.block_count");
  s.n_head = need_int(g, "llama.attention.head_count");
  s.n_head_kv = g.get_int("llama.attention.head_count_kv").value_or(s.n_head);
  s.n_ff = need_int(g, "llama.feed_forward_length");
  s.n_ctx = g.get_int("llama.context_length").value_or(2048);
  s.head_dim = g.get_int("llama.attention.key_length").value_or(s.n_embd / s.n_head);
  s.eps = static_cast<float>(g.get_float("llama.attention.layer_norm_rms_epsilon").value_or(1e-5));
  s.rope_base = static_cast<float>(g.get_float("llama.rope.freq_base").value_or(10000.0));
  s.n_vocab = synth_detail::tokenizer_size(g, "--embed-from: the small model");
  if (g.get_int("llama.rope.dimension_count").value_or(s.head_dim) != s.head_dim)
    throw std::invalid_argument("--embed-from: partial rotary embeddings are not supported");
  if (g.find("llama.rope.scaling.type") && g.get_string("llama.rope.scaling.type").value_or("none") != "none")
    throw std::invalid_argument("--embed-from: rope scaling is not supported");

  const int64_t hd_b = p.head_dim > 0 ? p.head_dim : p.n_embd / p.n_head;
  const int64_t n_s = s.n_embd, n_b = p.n_embd;
  auto fail = [](const std::string& why) { throw std::invalid_argument("--embed-from: " + why); };
  if (n_b < n_s || p.n_layer < s.n_layer || p.n_ff < s.n_ff || p.n_vocab < s.n_vocab)
    fail("the shape must be at least the small model's in every dimension (embedding " + std::to_string(n_s) +
         ", layers " + std::to_string(s.n_layer) + ", ff " + std::to_string(s.n_ff) + ", vocab " +
         std::to_string(s.n_vocab) + ")");
  if (p.n_head_kv != s.n_head_kv) fail("--n-head-kv must equal the small model's (" + std::to_string(s.n_head_kv) + ")");
  if (p.n_head % p.n_head_kv != 0 || p.n_head / p.n_head_kv < s.n_head / s.n_head_kv)
    fail("each key/value head needs at least the small model's " + std::to_string(s.n_head / s.n_head_kv) + " query heads");
  if (hd_b < s.head_dim || hd_b % s.head_dim != 0)
    fail("the head dimension must be a multiple of the small model's (" + std::to_string(s.head_dim) + ")");
  // The bias dim: alone in its 256-wide block where there is room (so that block quantization
  // keeps the small constant), else right after the small model's dims.
  int64_t bias_dim = -1;
  if (p.n_vocab > s.n_vocab) {
    const int64_t aligned = (n_s + 255) / 256 * 256;
    bias_dim = aligned < n_b ? aligned : n_s < n_b ? n_s : -1;
    if (bias_dim < 0) fail("a larger vocabulary needs one embedding dim more than the small model's");
  }

  const int64_t g_s = s.n_head / s.n_head_kv, g_b = p.n_head / p.n_head_kv, r = hd_b / s.head_dim;
  const float norm_scale = std::sqrt(static_cast<float>(n_s) / static_cast<float>(n_b));
  const float bias_value = bias_dim >= 0 ? 0.5f * std::sqrt(static_cast<float>(n_s) * s.eps) : 0.f;
  const float eps_b = (static_cast<float>(n_s) * s.eps - bias_value * bias_value) / static_cast<float>(n_b);
  const float q_scale = std::sqrt(static_cast<float>(hd_b) / static_cast<float>(s.head_dim));
  auto head_dim_of = [&](int64_t d) { return 2 * (d / 2) * r + d % 2; };  // small head dim -> large
  auto q_row = [&](int64_t row) {  // small query row -> large query row
    const int64_t h = row / s.head_dim, d = row % s.head_dim;
    return ((h / g_s) * g_b + h % g_s) * hd_b + head_dim_of(d);
  };
  auto kv_row = [&](int64_t row) { return (row / s.head_dim) * hd_b + head_dim_of(row % s.head_dim); };

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", p.name.empty() ? "embedded-" + std::to_string(p.n_embd) + "x" + std::to_string(p.n_layer) : p.name);
  synth_detail::write_shape(w, p, "llama", hd_b, s.n_ctx, eps_b, s.rope_base);
  // The small tokenizer, padded with unused tokens that no text ever maps to.
  synth_detail::copy_tokenizer_padded(w, g, p.n_vocab, "--embed-from");

  const int n_gqa = static_cast<int>(p.n_head / p.n_head_kv);
  const int64_t qd = p.n_head * hd_b, kvd = p.n_head_kv * hd_b;
  std::vector<synth_detail::DenseSpec> specs;
  const bool tied = !s.has("output.weight");
  auto norm = [&](const std::string& src) {
    return [&, src](float* dst) {
      for (int64_t d = 0; d < n_b; ++d) dst[d] = 1.f;
      if (src.empty()) return;
      const auto v = s.read(src, n_s, 1);
      for (int64_t d = 0; d < n_s; ++d) dst[d] = v[static_cast<size_t>(d)] * norm_scale;
    };
  };
  // Copies a small [rows_s][cols_s] matrix into the large one through row and column maps.
  auto matrix = [&](const std::string& src, int64_t cols_s, int64_t rows_s, int64_t cols_b, auto row_map, auto col_map,
                    float scale) {
    return [&, src, cols_s, rows_s, cols_b, row_map, col_map, scale](float* dst) {
      const auto v = s.read(src, cols_s, rows_s);
      for (int64_t i = 0; i < rows_s; ++i)
        for (int64_t j = 0; j < cols_s; ++j)
          dst[row_map(i) * cols_b + col_map(j)] = v[static_cast<size_t>(i * cols_s + j)] * scale;
    };
  };
  auto same = [](int64_t i) { return i; };
  auto o_col = q_row;  // attention output columns are the concatenated query heads

  specs.push_back({"token_embd.weight", n_b, p.n_vocab, [&](float* dst) {
                     const auto v = s.read("token_embd.weight", n_s, s.n_vocab);
                     for (int64_t t = 0; t < s.n_vocab; ++t)
                       for (int64_t d = 0; d < n_s; ++d) dst[t * n_b + d] = v[static_cast<size_t>(t * n_s + d)];
                     if (bias_dim >= 0)
                       for (int64_t t = 0; t < p.n_vocab; ++t) dst[t * n_b + bias_dim] = bias_value;
                   }});
  for (int64_t il = 0; il < p.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    const bool real = il < s.n_layer;
    auto zero = [](float*) {};
    specs.push_back({b + "attn_norm.weight", n_b, 0, norm(real ? b + "attn_norm.weight" : "")});
    specs.push_back({b + "attn_q.weight", n_b, qd,
                     real ? std::function<void(float*)>(matrix(b + "attn_q.weight", n_s, s.n_head * s.head_dim, n_b, q_row, same, q_scale))
                          : zero});
    specs.push_back({b + "attn_k.weight", n_b, kvd,
                     real ? std::function<void(float*)>(matrix(b + "attn_k.weight", n_s, s.n_head_kv * s.head_dim, n_b, kv_row, same, 1.f))
                          : zero});
    specs.push_back({b + "attn_v.weight", n_b, kvd,
                     real ? std::function<void(float*)>(matrix(b + "attn_v.weight", n_s, s.n_head_kv * s.head_dim, n_b, kv_row, same, 1.f))
                          : zero});
    specs.push_back({b + "attn_output.weight", qd, n_b,
                     real ? std::function<void(float*)>(matrix(b + "attn_output.weight", s.n_head * s.head_dim, n_s, qd, same, o_col, 1.f))
                          : zero});
    specs.push_back({b + "ffn_norm.weight", n_b, 0, norm(real ? b + "ffn_norm.weight" : "")});
    specs.push_back({b + "ffn_gate.weight", n_b, p.n_ff,
                     real ? std::function<void(float*)>(matrix(b + "ffn_gate.weight", n_s, s.n_ff, n_b, same, same, 1.f)) : zero});
    specs.push_back({b + "ffn_up.weight", n_b, p.n_ff,
                     real ? std::function<void(float*)>(matrix(b + "ffn_up.weight", n_s, s.n_ff, n_b, same, same, 1.f)) : zero});
    specs.push_back({b + "ffn_down.weight", p.n_ff, n_b,
                     real ? std::function<void(float*)>(matrix(b + "ffn_down.weight", s.n_ff, n_s, p.n_ff, same, same, 1.f)) : zero});
  }
  specs.push_back({"output_norm.weight", n_b, 0, norm("output_norm.weight")});
  specs.push_back({"output.weight", n_b, p.n_vocab, [&](float* dst) {
                     const auto v = s.read(tied ? "token_embd.weight" : "output.weight", n_s, s.n_vocab);
                     for (int64_t t = 0; t < s.n_vocab; ++t)
                       for (int64_t d = 0; d < n_s; ++d) dst[t * n_b + d] = v[static_cast<size_t>(t * n_s + d)];
                     for (int64_t t = s.n_vocab; t < p.n_vocab; ++t) dst[t * n_b + bias_dim] = kPadLogitWeight;
                   }});

  synth_detail::add_dense_tensors(w, std::move(specs), p.mix, static_cast<int>(p.n_layer), n_gqa, pool, progress);
  w.write(path);
}

}  // namespace zen::engine
