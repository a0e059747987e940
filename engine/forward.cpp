#include "engine/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/attention.h"
#include "kernels/float_ops.h"
#include "kernels/half.h"

namespace zen::engine {

using kernels::matmul;

// KV cache of one sequence for the layers this slice owns.
struct Context::SeqCache {
  int32_t len = 0;
  int32_t cap = 0;
  std::vector<std::vector<float>> k;  // per owned layer: [cap][kv_dim]   (F32 cache)
  std::vector<std::vector<float>> v;  // per owned layer: [cap][v_dim]
  std::vector<std::vector<uint16_t>> k16;  // the same as IEEE half          (F16 cache)
  std::vector<std::vector<uint16_t>> v16;
};

// Buffers sized once for max_batch rows; nothing is allocated per token.
struct Context::Scratch {
  std::vector<float> x;      // [B][n_embd] residual stream
  std::vector<float> cur;    // [B][n_embd] normed input of a sub-block
  std::vector<float> q;      // [B][q_dim]
  std::vector<float> k;      // [B][kv_dim]
  std::vector<float> v;      // [B][v_dim]
  std::vector<float> attn;   // [B][n_head * head_dim_v]
  std::vector<float> tmp;    // [B][n_embd] sub-block output
  std::vector<float> gate;   // [B][n_ff]
  std::vector<float> up;     // [B][n_ff]
  std::vector<float> scores; // [n_threads][n_ctx]
  std::vector<float> kvrow;  // [n_threads][2][max head dim] F16 cache rows widened to F32
  std::vector<float> outrows;// [B][n_embd] rows selected for output
  std::vector<int32_t> out_idx;
  kernels::MatmulScratch mm;
};

Context::Context(std::shared_ptr<const Model> model, const ContextParams& params) : model_(std::move(model)) {
  const Hparams& hp = model_->hp();
  n_ctx_ = params.n_ctx > 0 ? params.n_ctx : static_cast<int>(hp.n_ctx_train);
  if (n_ctx_ <= 0 || n_ctx_ > (1 << 22)) throw std::invalid_argument("context size out of range");
  max_batch_ = std::max(1, params.max_batch);
  max_seqs_ = std::max(1, params.max_seqs);
  kv_f16_ = params.kv_f16;
  pool_ = std::make_unique<kernels::ThreadPool>(std::max(1, params.n_threads));
  s_ = std::make_unique<Scratch>();
  const size_t B = static_cast<size_t>(max_batch_);
  s_->x.resize(B * hp.n_embd);
  s_->cur.resize(B * hp.n_embd);
  s_->q.resize(B * hp.q_dim());
  s_->k.resize(B * hp.kv_dim());
  s_->v.resize(B * hp.v_dim());
  s_->attn.resize(B * hp.n_head * hp.head_dim_v);
  s_->tmp.resize(B * hp.n_embd);
  s_->gate.resize(B * hp.n_ff);
  s_->up.resize(B * hp.n_ff);
  s_->scores.resize(static_cast<size_t>(pool_->size()) * (hp.n_head / hp.n_head_kv) * n_ctx_);
  s_->kvrow.resize(static_cast<size_t>(pool_->size()) * 2 * std::max(hp.head_dim, hp.head_dim_v));
  s_->outrows.resize(B * hp.n_embd);
  s_->out_idx.reserve(B);
}

Context::~Context() = default;

int32_t Context::seq_len(int32_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second->len;
}

void Context::clear_seq(int32_t seq) { seqs_.erase(seq); }
void Context::clear_all() { seqs_.clear(); }

void Context::truncate_seq(int32_t seq, int32_t n_pos) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  it->second->len = std::clamp(n_pos, 0, it->second->len);
}

size_t Context::kv_bytes() const {
  const Hparams& hp = model_->hp();
  size_t total = 0;
  for (const auto& [id, c] : seqs_)
    total += static_cast<size_t>(c->cap) * (hp.kv_dim() + hp.v_dim()) * (kv_f16_ ? 2 : sizeof(float)) *
             std::max(c->k.size(), c->k16.size());
  return total;
}

Context::SeqCache& Context::seq_cache(int32_t seq) {
  auto it = seqs_.find(seq);
  if (it != seqs_.end()) return *it->second;
  if (static_cast<int>(seqs_.size()) >= max_seqs_)
    throw std::runtime_error("too many live sequences (max " + std::to_string(max_seqs_) + ")");
  auto c = std::make_unique<SeqCache>();
  if (kv_f16_) {
    c->k16.resize(model_->layers().size());
    c->v16.resize(model_->layers().size());
  } else {
    c->k.resize(model_->layers().size());
    c->v.resize(model_->layers().size());
  }
  return *seqs_.emplace(seq, std::move(c)).first->second;
}

void Context::forward(std::span<const BatchRow> rows, const float* hidden_in, std::vector<float>& out, bool all_outputs) {
  const Hparams& hp = model_->hp();
  if (!model_->has_embed() && !hidden_in) throw std::invalid_argument("this slice has no embedding: hidden states are required");
  // Validate the whole batch before touching any cache: positions of each sequence must
  // continue where its cache ends, in order.
  std::unordered_map<int32_t, int32_t> next;
  size_t n_out = 0;
  for (const BatchRow& r : rows) {
    if (r.seq < 0) throw std::invalid_argument("negative sequence id");
    auto [it, fresh] = next.try_emplace(r.seq, seq_len(r.seq));
    if (r.pos != it->second)
      throw std::invalid_argument("sequence " + std::to_string(r.seq) + ": position " + std::to_string(r.pos) +
                                  " does not follow the cached " + std::to_string(it->second) + " positions");
    if (r.pos >= n_ctx_)
      throw std::length_error("sequence " + std::to_string(r.seq) + ": position " + std::to_string(r.pos) +
                              " exceeds the context size " + std::to_string(n_ctx_));
    ++it->second;
    if (model_->has_embed() && (r.token < 0 || r.token >= hp.n_vocab))
      throw std::invalid_argument("token id " + std::to_string(r.token) + " out of range [0, " + std::to_string(hp.n_vocab) + ")");
    if (r.output || all_outputs) ++n_out;
  }
  size_t new_seqs = 0;
  for (const auto& [seq, len] : next) new_seqs += seqs_.count(seq) ? 0 : 1;
  if (seqs_.size() + new_seqs > static_cast<size_t>(max_seqs_))
    throw std::runtime_error("too many live sequences (max " + std::to_string(max_seqs_) + ")");

  // Reserve cache space for every sequence up front (amortised doubling, capped at n_ctx).
  for (const auto& [seq, len] : next) {
    SeqCache& c = seq_cache(seq);
    if (len > c.cap) {
      const int32_t cap = std::min(n_ctx_, std::max({len, c.cap * 2, 64}));
      for (size_t l = 0; l < c.k.size(); ++l) {
        c.k[l].resize(static_cast<size_t>(cap) * hp.kv_dim());
        c.v[l].resize(static_cast<size_t>(cap) * hp.v_dim());
      }
      for (size_t l = 0; l < c.k16.size(); ++l) {
        c.k16[l].resize(static_cast<size_t>(cap) * hp.kv_dim());
        c.v16[l].resize(static_cast<size_t>(cap) * hp.v_dim());
      }
      c.cap = cap;
    }
  }

  const int64_t width = model_->has_head() ? hp.n_vocab : hp.n_embd;
  out.resize(n_out * static_cast<size_t>(width));
  float* dst = out.data();
  for (size_t i = 0; i < rows.size(); i += static_cast<size_t>(max_batch_)) {
    const size_t n = std::min(rows.size() - i, static_cast<size_t>(max_batch_));
    auto chunk = rows.subspan(i, n);
    forward_chunk(chunk, hidden_in ? hidden_in + i * hp.n_embd : nullptr, dst, all_outputs);
    for (const BatchRow& r : chunk)
      if (r.output || all_outputs) dst += width;
  }
}

void Context::forward_chunk(std::span<const BatchRow> rows, const float* hidden_in, float* out, bool all_outputs) {
  const Hparams& hp = model_->hp();
  Scratch& s = *s_;
  kernels::ThreadPool& pool = *pool_;
  const int64_t n = static_cast<int64_t>(rows.size());
  const int64_t E = hp.n_embd, QD = hp.q_dim(), KD = hp.kv_dim(), VD = hp.v_dim(), AD = hp.n_head * hp.head_dim_v;
  const int64_t FF = hp.n_ff, HD = hp.head_dim;

  // Rows are independent in everything but attention and the matmuls: split them over threads
  // (a few decode rows too: run on one thread they leave the others waiting at the next matmul).
  auto per_row = [&](auto&& fn) {
    pool.parallel_for(n, 1, [&](int64_t r0, int64_t r1, int) { for (int64_t r = r0; r < r1; ++r) fn(r); });
  };

  // Embedding, or the hidden states handed over by the previous stage.
  if (model_->has_embed()) {
    for (int64_t r = 0; r < n; ++r) kernels::get_row(model_->tok_embd().mat, rows[r].token, &s.x[r * E]);
  } else {
    std::memcpy(s.x.data(), hidden_in, static_cast<size_t>(n * E) * sizeof(float));
  }
  dump("inp_embd", -1, n, E, s.x.data());

  const auto& layers = model_->layers();
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& L = layers[li];
    const int il = L.index;
    // attention block: cur = rmsnorm(x) * attn_norm (after the first layer, in the pass of
    // the residual add before it)
    if (li == 0) per_row([&](int64_t r) { kernels::rms_norm(&s.x[r * E], L.attn_norm.f32(), E, hp.rms_eps, &s.cur[r * E]); });
    dump("attn_norm", il, n, E, s.cur.data());
    const kernels::MatmulTarget qkv[] = {{&L.wq.mat, s.q.data()}, {&L.wk.mat, s.k.data()}, {&L.wv.mat, s.v.data()}};
    kernels::matmul_many(qkv, s.cur.data(), n, pool, s.mm);
    per_row([&](int64_t r) {
      float* q = &s.q[r * QD];
      float* k = &s.k[r * KD];
      if (hp.qkv_bias) {
        kernels::add(q, L.bq.f32(), QD);
        kernels::add(k, L.bk.f32(), KD);
        kernels::add(&s.v[r * VD], L.bv.f32(), VD);
      }
      if (hp.qk_norm) {  // per-head RMSNorm of q and k, before RoPE
        for (int64_t h = 0; h < hp.n_head; ++h) kernels::rms_norm(q + h * HD, L.q_norm.f32(), HD, hp.rms_eps, q + h * HD);
        for (int64_t h = 0; h < hp.n_head_kv; ++h) kernels::rms_norm(k + h * HD, L.k_norm.f32(), HD, hp.rms_eps, k + h * HD);
      }
      kernels::rope(q, static_cast<int>(hp.n_head), static_cast<int>(HD), rows[r].pos, hp.rope);
      kernels::rope(k, static_cast<int>(hp.n_head_kv), static_cast<int>(HD), rows[r].pos, hp.rope);
    });
    dump("q_rope", il, n, QD, s.q.data());
    dump("k_rope", il, n, KD, s.k.data());
    dump("v", il, n, VD, s.v.data());
    // store k and v of these rows in each sequence's cache
    for (int64_t r = 0; r < n; ++r) {
      SeqCache& c = *seqs_.at(rows[r].seq);
      const size_t kat = static_cast<size_t>(rows[r].pos) * KD, vat = static_cast<size_t>(rows[r].pos) * VD;
      if (kv_f16_) {
        for (int64_t i = 0; i < KD; ++i) c.k16[li][kat + i] = kernels::fp32_to_fp16(s.k[r * KD + i]);
        for (int64_t i = 0; i < VD; ++i) c.v16[li][vat + i] = kernels::fp32_to_fp16(s.v[r * VD + i]);
      } else {
        std::memcpy(&c.k[li][kat], &s.k[r * KD], KD * sizeof(float));
        std::memcpy(&c.v[li][vat], &s.v[r * VD], VD * sizeof(float));
      }
    }
    attention(L, li, rows);
    dump("kqv_out", il, n, AD, s.attn.data());
    matmul(L.wo.mat, s.attn.data(), n, s.tmp.data(), pool, s.mm);
    // feed-forward block: x += down(silu(gate(cur)) * up(cur)), cur = rmsnorm(x) * ffn_norm
    per_row([&](int64_t r) {
      kernels::add(&s.x[r * E], &s.tmp[r * E], E);
      kernels::rms_norm(&s.x[r * E], L.ffn_norm.f32(), E, hp.rms_eps, &s.cur[r * E]);
    });
    dump("ffn_inp", il, n, E, s.x.data());
    dump("ffn_norm", il, n, E, s.cur.data());
    const kernels::MatmulTarget gate_up[] = {{&L.ffn_gate.mat, s.gate.data()}, {&L.ffn_up.mat, s.up.data()}};
    kernels::matmul_many(gate_up, s.cur.data(), n, pool, s.mm);
    // Element-wise over all rows at once, so that even one row is split over the threads.
    pool.parallel_for(n * FF, 1024, [&](int64_t i0, int64_t i1, int) {
      kernels::swiglu(&s.gate[i0], &s.up[i0], i1 - i0, &s.gate[i0]);
    });
    dump("ffn_swiglu", il, n, FF, s.gate.data());
    matmul(L.ffn_down.mat, s.gate.data(), n, s.tmp.data(), pool, s.mm);
    const Layer* next = li + 1 < layers.size() ? &layers[li + 1] : nullptr;
    per_row([&](int64_t r) {
      kernels::add(&s.x[r * E], &s.tmp[r * E], E);
      if (next) kernels::rms_norm(&s.x[r * E], next->attn_norm.f32(), E, hp.rms_eps, &s.cur[r * E]);
    });
    dump("l_out", il, n, E, s.x.data());
  }

  for (const BatchRow& r : rows) {
    SeqCache& c = *seqs_.at(r.seq);
    c.len = std::max(c.len, r.pos + 1);
  }

  // Gather the rows that want output.
  s.out_idx.clear();
  for (int64_t r = 0; r < n; ++r)
    if (rows[r].output || all_outputs) s.out_idx.push_back(static_cast<int32_t>(r));
  const int64_t m = static_cast<int64_t>(s.out_idx.size());
  if (m == 0) return;
  if (!model_->has_head()) {
    for (int64_t j = 0; j < m; ++j) std::memcpy(out + j * E, &s.x[s.out_idx[j] * E], E * sizeof(float));
    return;
  }
  for (int64_t j = 0; j < m; ++j)
    kernels::rms_norm(&s.x[s.out_idx[j] * E], model_->output_norm().f32(), E, hp.rms_eps, &s.outrows[j * E]);
  dump("result_norm", -1, m, E, s.outrows.data());
  matmul(model_->output().mat, s.outrows.data(), m, out, pool, s.mm);
  dump("result_output", -1, m, hp.n_vocab, out);
}

void Context::attention(const Layer& L, size_t li, std::span<const BatchRow> rows) {
  const Hparams& hp = model_->hp();
  Scratch& s = *s_;
  const int64_t n = static_cast<int64_t>(rows.size());
  const int64_t HD = hp.head_dim, HDV = hp.head_dim_v, QD = hp.q_dim(), KD = hp.kv_dim(), VD = hp.v_dim();
  const int64_t AD = hp.n_head * HDV;
  const int64_t group = hp.n_head / hp.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HD));
  const int64_t tasks = n * hp.n_head_kv;
  // Tasks are (row, KV head) pairs, each with the query heads that share the KV head; tiny
  // batches stay on the calling thread.
  const int64_t grain = n * static_cast<int64_t>(rows.back().pos + 1) * HD < 8192 ? tasks : 1;
  pool_->parallel_for(tasks, grain, [&](int64_t t0, int64_t t1, int ith) {
    float* scores = &s.scores[static_cast<size_t>(ith) * group * n_ctx_];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / hp.n_head_kv, hk = t % hp.n_head_kv;
      const SeqCache& c = *seqs_.at(rows[r].seq);
      const int32_t len = rows[r].pos + 1;  // causal: keys at positions [0, pos]
      const float* q = &s.q[r * QD + hk * group * HD];
      float* o = &s.attn[r * AD + hk * group * HDV];
      if (!kv_f16_) {
        kernels::attend_f32(q, static_cast<int>(group), c.k[li].data() + hk * HD, static_cast<size_t>(KD),
                            c.v[li].data() + hk * HDV, static_cast<size_t>(VD), HD, HDV, len, scale, scores, o);
        continue;
      }
      // widen each cached half row to F32, then the same math
      float* row = &s.kvrow[static_cast<size_t>(ith) * 2 * std::max(HD, HDV)];
      const uint16_t* K = c.k16[li].data() + hk * HD;
      const uint16_t* V = c.v16[li].data() + hk * HDV;
      for (int64_t g = 0; g < group; ++g, q += HD, o += HDV) {
        std::fill(o, o + HDV, 0.0f);
        for (int32_t j = 0; j < len; ++j) {
          for (int64_t i = 0; i < HD; ++i) row[i] = kernels::fp16_to_fp32(K[static_cast<size_t>(j) * KD + i]);
          scores[j] = kernels::dot_f32(q, row, HD) * scale;
        }
        kernels::softmax(scores, len);
        for (int32_t j = 0; j < len; ++j) {
          for (int64_t i = 0; i < HDV; ++i) row[i] = kernels::fp16_to_fp32(V[static_cast<size_t>(j) * VD + i]);
          kernels::axpy(o, scores[j], row, HDV);
        }
      }
    }
  });
  (void)L;
}

}  // namespace zen::engine
