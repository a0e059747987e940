#include "engine/perplexity.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/forward.h"

namespace zen::engine {

namespace {

// log-softmax of one row of logits, in double.
void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double mx = logits[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = logits[i] - lse;
}

int64_t argmax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

// Runs one window and returns the logits of the scored rows [first, n_ctx - 1).
void eval_window(Context& ctx, std::span<const int32_t> window, int32_t bos, int first, std::vector<float>& logits) {
  std::vector<BatchRow> rows(window.size());
  for (size_t j = 0; j < window.size(); ++j) {
    const bool scored = static_cast<int>(j) >= first && j + 1 < window.size();
    rows[j] = {0, static_cast<int32_t>(j), j == 0 && bos >= 0 ? bos : window[j], scored};
  }
  ctx.clear_all();
  ctx.forward(rows, nullptr, logits);
}

}  // namespace

PerplexityResult compute_perplexity(std::shared_ptr<const Model> model, std::shared_ptr<const Model> base,
                                    std::span<const int32_t> tokens, const PerplexityParams& params,
                                    const PerplexityProgress& progress) {
  if (!model->has_embed() || !model->has_head()) throw std::invalid_argument("perplexity needs a whole model");
  const int n_ctx = params.n_ctx;
  if (n_ctx < 4) throw std::invalid_argument("--ctx must be at least 4");
  if (n_ctx > model->hp().n_ctx_train)
    throw std::invalid_argument("--ctx " + std::to_string(n_ctx) + " exceeds the model's context length " +
                                std::to_string(model->hp().n_ctx_train));
  if (tokens.size() < static_cast<size_t>(n_ctx))
    throw std::invalid_argument("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one window of " +
                                std::to_string(n_ctx) + " (use a longer text or a smaller --ctx)");
  const int64_t n_vocab = model->hp().n_vocab;
  if (base) {
    if (!base->has_embed() || !base->has_head()) throw std::invalid_argument("the base model must be a whole model");
    if (base->hp().n_vocab != n_vocab)
      throw std::invalid_argument("the base model's vocabulary (" + std::to_string(base->hp().n_vocab) +
                                  ") differs from the model's (" + std::to_string(n_vocab) + ")");
  }
  for (int32_t t : tokens)
    if (t < 0 || t >= n_vocab) throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");

  ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_threads = std::max(1, params.threads);
  cp.max_batch = n_ctx;
  cp.max_seqs = 1;
  Context ctx(model, cp);
  std::unique_ptr<Context> base_ctx;
  if (base) base_ctx = std::make_unique<Context>(base, cp);

  size_t n_windows = tokens.size() / static_cast<size_t>(n_ctx);
  if (params.max_windows > 0) n_windows = std::min(n_windows, params.max_windows);
  const int first = n_ctx / 2;
  const int64_t per_window = n_ctx - 1 - first;

  PerplexityResult r;
  double sum = 0, sum_sq = 0, base_sum = 0, kl_sum = 0;
  size_t agree = 0;
  std::vector<float> logits, base_logits;
  std::vector<double> lp, base_lp;
  for (size_t w = 0; w < n_windows; ++w) {
    auto window = tokens.subspan(w * static_cast<size_t>(n_ctx), static_cast<size_t>(n_ctx));
    eval_window(ctx, window, params.bos, first, logits);
    if (base_ctx) eval_window(*base_ctx, window, params.bos, first, base_logits);
    for (int64_t k = 0; k < per_window; ++k) {
      const float* row = &logits[static_cast<size_t>(k * n_vocab)];
      const int32_t next = window[static_cast<size_t>(first + k + 1)];
      log_softmax(row, n_vocab, lp);
      const double nll = -lp[static_cast<size_t>(next)];
      sum += nll;
      sum_sq += nll * nll;
      if (base_ctx) {
        const float* brow = &base_logits[static_cast<size_t>(k * n_vocab)];
        log_softmax(brow, n_vocab, base_lp);
        base_sum += -base_lp[static_cast<size_t>(next)];
        double kl = 0;
        for (int64_t v = 0; v < n_vocab; ++v) {
          const double lb = base_lp[static_cast<size_t>(v)];
          kl += std::exp(lb) * (lb - lp[static_cast<size_t>(v)]);
        }
        kl = std::max(kl, 0.0);  // rounding can leave a tiny negative
        kl_sum += kl;
        r.kl_max = std::max(r.kl_max, kl);
        if (argmax(row, n_vocab) == argmax(brow, n_vocab)) ++agree;
      }
    }
    r.n_windows = w + 1;
    r.n_scored += static_cast<size_t>(per_window);
    if (progress) progress(r.n_windows, n_windows, std::exp(sum / static_cast<double>(r.n_scored)));
  }
  const double n = static_cast<double>(r.n_scored);
  r.nll = sum / n;
  r.ppl = std::exp(r.nll);
  const double var = std::max(0.0, sum_sq / n - r.nll * r.nll);
  r.nll_stderr = r.n_scored > 1 ? std::sqrt(var / (n - 1)) : 0.0;
  if (base_ctx) {
    r.base_nll = base_sum / n;
    r.base_ppl = std::exp(r.base_nll);
    r.kl_mean = kl_sum / n;
    r.top1_agree = static_cast<double>(agree) / n;
  }
  return r;
}

}  // namespace zen::engine
