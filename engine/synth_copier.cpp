// `zen synth --copier`: a llama model whose weights are built to continue a text by copying it,
// the way trained models continue a repetitive prompt (the "induction heads" of the
// interpretability literature). Its cost is its shape's, like any model's; its text is a copy
// wherever the context repeats. It is a benchmark stand-in: it shows what prompt-lookup decoding
// gains when the drafts are right, which a tiny trained model that rarely copies cannot.
//
// Each token t has a code c(t) in {-1, +1}^D, D = n_head_kv * head_dim (random, from the seed).
// The residual stream holds, in blocks of D dims: T = c(token here), P = c(previous token),
// PP = c(the one before), O = the prediction; and one dim that holds 1 (the "bias" dim).
// - Layers 0 and 1 copy one position back: T -> P, then P -> PP. Their queries and keys come
//   from the bias dim only, set so that after RoPE the score is sum_i w cos((m - n - 1) theta_i)
//   over the fast-turning pairs i: largest at n = m - 1, by at least kPositionGap logits.
// - Layer 2 is the induction head: the query holds (T, P) of this position, the key (P, PP) of
//   each earlier one, both on the slow-turning pairs (RoPE barely moves them over the context),
//   so position n scores highest where tokens n-1, n-2 equal this token and the one before.
//   Its value is T of position n (the token that followed): it goes to O.
// - The output rows read O: logit(t) = kOutputLogit * c(t).O / D. Padded tokens (past the
//   tokenizer's) weigh the bias dim with kPadLogit, so they are never chosen.
// - Every other weight is zero: the later layers leave the residual as it is. Each key, query,
//   value and output row has one nonzero (or D of the same magnitude), so block quantization
//   keeps the model's function.
// The RoPE base is kRopeBase (the weights depend on it); the norm weights undo RMSNorm's scale
// for the blocks filled so far, so each layer reads the codes as +-1.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/synth.h"
#include "engine/synth_internal.h"

namespace zen::engine {

namespace {

constexpr float kRopeBase = 1e20f;     // most pairs turn less than half a radian over the context
constexpr double kPositionGap = 20;    // logits between the previous position and any other
constexpr double kMatchGap = 32;       // logits one matching token adds in the induction head
constexpr double kOutputLogit = 30;    // the copied token's logit
constexpr float kPadLogit = -100;      // padded tokens' logit

}  // namespace

void write_copier_model(const SynthParams& p, const std::string& path, const std::function<void(size_t, size_t)>& progress) {
  auto fail = [](const std::string& why) { throw std::invalid_argument("--copier: " + why); };
  if (p.arch != "llama") fail("writes llama models only (--arch llama)");
  if (p.n_embd <= 0 || p.n_head <= 0 || p.n_head_kv <= 0 || p.n_ff <= 0 || p.n_vocab <= 0 || p.n_ctx < 2)
    fail("every dimension must be positive and the context at least 2");
  if (p.n_layer < 3) fail("needs at least 3 layers");
  if (p.n_head % p.n_head_kv != 0) fail("n_head must be a multiple of n_head_kv");
  const int64_t hd = p.head_dim > 0 ? p.head_dim : p.n_embd / p.n_head;
  if (hd < 8 || hd % 2 != 0) fail("the head dimension must be even and at least 8");
  const int64_t D = p.n_head_kv * hd, E = p.n_embd;
  if (E < 4 * D + 1) fail("the embedding must be at least 4 * n_head_kv * head_dim + 1 = " + std::to_string(4 * D + 1));
  const int64_t T = 0, P = D, PP = 2 * D, O = 3 * D, bias = 4 * D;

  // RoPE pairs: pair i turns by theta_i per position. Slow pairs (under half a radian over the
  // context) carry content; the others find positions.
  std::vector<double> theta(static_cast<size_t>(hd / 2));
  std::vector<int64_t> fast, slow;
  for (int64_t i = 0; i < hd / 2; ++i) {
    theta[static_cast<size_t>(i)] = std::pow(static_cast<double>(kRopeBase), -2.0 * static_cast<double>(i) / static_cast<double>(hd));
    (theta[static_cast<size_t>(i)] * static_cast<double>(p.n_ctx) > 0.5 ? fast : slow).push_back(i);
  }
  const int64_t nc = static_cast<int64_t>(slow.size());  // content dims per token compared
  if (nc < 4) fail("the head dimension leaves too few slowly turning pairs to compare tokens (need 4)");
  // The smallest score gap between distance 1 and any other distance, per unit weight.
  double gap = INFINITY;
  for (int64_t d = 0; d < p.n_ctx; ++d) {
    if (d == 1) continue;
    double g = 0;
    for (int64_t i : fast) g += 1 - std::cos(static_cast<double>(d - 1) * theta[static_cast<size_t>(i)]);
    gap = std::min(gap, g);
  }
  if (!(gap > 1e-3)) fail("the fast RoPE pairs cannot tell the previous position apart");
  const double inv_scale = std::sqrt(static_cast<double>(hd));  // attention divides scores by sqrt(head_dim)
  const auto pos_w = static_cast<float>(std::sqrt(kPositionGap * inv_scale / gap));                       // query and key
  const auto match_w = static_cast<float>(std::sqrt(kMatchGap * inv_scale / static_cast<double>(nc)));  // per side
  const auto out_w = static_cast<float>(kOutputLogit / static_cast<double>(D));
  // Content dims of a head: the slow pairs' dims; the first nc compare the current token, the
  // rest the previous one.
  std::vector<int64_t> cdims;
  for (int64_t i : slow) {
    cdims.push_back(2 * i);
    cdims.push_back(2 * i + 1);
  }

  int64_t n_real = p.n_vocab;
  std::shared_ptr<GgufModelFile> vocab;
  if (!p.vocab_from.empty()) {
    vocab = GgufModelFile::open(p.vocab_from);
    n_real = synth_detail::tokenizer_size(vocab->gguf(), p.vocab_from);
  }
  auto code = [seed = p.seed](int64_t t, int64_t d) {  // bit d % 64 of draw d / 64 of token t's stream
    uint64_t s = seed ^ (static_cast<uint64_t>(t) * 0xD1B54A32D192ED03ull);
    uint64_t h = 0;
    for (int64_t i = 0; i <= d / 64; ++i) h = synth_detail::splitmix(s);
    return (h >> (d % 64)) & 1 ? 1.f : -1.f;
  };

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", p.name.empty() ? "copier-" + std::to_string(E) + "x" + std::to_string(p.n_layer) : p.name);
  synth_detail::write_shape(w, p, "llama", hd, p.n_ctx, 1e-5f, kRopeBase);
  if (vocab)
    synth_detail::copy_tokenizer_padded(w, vocab->gguf(), p.n_vocab, p.vocab_from);
  else
    synth_detail::write_synthetic_vocab(w, p.n_vocab);

  const int64_t g = p.n_head / p.n_head_kv, qd = p.n_head * hd, kvd = D;
  // RMSNorm gain that leaves +-1 codes as they are when `blocks` blocks of D and the bias dim are
  // filled.
  auto gain = [&](int64_t blocks) { return static_cast<float>(std::sqrt(static_cast<double>(blocks * D + 1) / static_cast<double>(E))); };
  auto fill_all = [E](float v) { return [E, v](float* dst) { std::fill(dst, dst + E, v); }; };
  auto zero = [](float*) {};

  std::vector<synth_detail::DenseSpec> specs;
  specs.push_back({"token_embd.weight", E, p.n_vocab, [&, code](float* dst) {
                     for (int64_t t = 0; t < p.n_vocab; ++t) {
                       for (int64_t d = 0; d < D; ++d) dst[t * E + T + d] = code(t, d);
                       dst[t * E + bias] = 1.f;
                     }
                   }});
  for (int64_t il = 0; il < p.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    std::function<void(float*)> q = zero, k = zero, v = zero, o = zero;
    if (il < 3) {
      const int64_t src = il == 1 ? P : T, dst_block = il == 0 ? P : il == 1 ? PP : O;
      v = [=](float* dst) {
        for (int64_t j = 0; j < p.n_head_kv; ++j)
          for (int64_t d = 0; d < hd; ++d) dst[(j * hd + d) * E + src + j * hd + d] = 1.f;
      };
      o = [=](float* dst) {  // head j*g's output goes to the destination block
        for (int64_t j = 0; j < p.n_head_kv; ++j)
          for (int64_t d = 0; d < hd; ++d) dst[(dst_block + j * hd + d) * qd + j * g * hd + d] = 1.f;
      };
    }
    if (il < 2) {
      // Key pair i = (w, 0), query pair i = w (cos theta_i, -sin theta_i): after RoPE their
      // product is w^2 cos((m - n - 1) theta_i).
      q = [=, &theta](float* dst) {
        for (int64_t j = 0; j < p.n_head_kv; ++j)
          for (int64_t i : fast) {
            const double t = theta[static_cast<size_t>(i)];
            dst[(j * g * hd + 2 * i) * E + bias] = pos_w * static_cast<float>(std::cos(t));
            dst[(j * g * hd + 2 * i + 1) * E + bias] = -pos_w * static_cast<float>(std::sin(t));
          }
      };
      k = [=](float* dst) {
        for (int64_t j = 0; j < p.n_head_kv; ++j)
          for (int64_t i : fast) dst[(j * hd + 2 * i) * E + bias] = pos_w;
      };
    } else if (il == 2) {
      q = [=, &cdims](float* dst) {
        for (int64_t j = 0; j < p.n_head_kv; ++j)
          for (int64_t r = 0; r < nc; ++r) {
            dst[(j * g * hd + cdims[static_cast<size_t>(r)]) * E + T + j * hd + r] = match_w;
            dst[(j * g * hd + cdims[static_cast<size_t>(nc + r)]) * E + P + j * hd + r] = match_w;
          }
      };
      k = [=, &cdims](float* dst) {
        for (int64_t j = 0; j < p.n_head_kv; ++j)
          for (int64_t r = 0; r < nc; ++r) {
            dst[(j * hd + cdims[static_cast<size_t>(r)]) * E + P + j * hd + r] = match_w;
            dst[(j * hd + cdims[static_cast<size_t>(nc + r)]) * E + PP + j * hd + r] = match_w;
          }
      };
    }
    specs.push_back({b + "attn_norm.weight", E, 0, fill_all(il < 3 ? gain(il + 1) : 1.f)});
    specs.push_back({b + "attn_q.weight", E, qd, q});
    specs.push_back({b + "attn_k.weight", E, kvd, k});
    specs.push_back({b + "attn_v.weight", E, kvd, v});
    specs.push_back({b + "attn_output.weight", qd, E, o});
    specs.push_back({b + "ffn_norm.weight", E, 0, fill_all(1.f)});
    specs.push_back({b + "ffn_gate.weight", E, p.n_ff, zero});
    specs.push_back({b + "ffn_up.weight", E, p.n_ff, zero});
    specs.push_back({b + "ffn_down.weight", p.n_ff, E, zero});
  }
  specs.push_back({"output_norm.weight", E, 0, fill_all(gain(4))});
  specs.push_back({"output.weight", E, p.n_vocab, [&, code](float* dst) {
                     for (int64_t t = 0; t < n_real; ++t)
                       for (int64_t d = 0; d < D; ++d) dst[t * E + O + d] = out_w * code(t, d);
                     for (int64_t t = n_real; t < p.n_vocab; ++t) dst[t * E + bias] = kPadLogit;
                   }});
  auto pool = std::make_shared<kernels::ThreadPool>(std::max(1, p.threads));
  synth_detail::add_dense_tensors(w, std::move(specs), p.mix, static_cast<int>(p.n_layer), static_cast<int>(g), pool, progress);
  w.write(path);
}

}  // namespace zen::engine
