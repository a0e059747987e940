// `zen perplexity`: perplexity of a model over a token stream, and optionally how far a model's
// next-token distributions are from a base model's (mean KL divergence, top-1 agreement).
//
// Windows, as llama.cpp's perplexity tool does it: the tokens are cut into consecutive,
// non-overlapping windows of n_ctx tokens (a shorter tail is dropped). Each window is evaluated
// from an empty cache, with its first token replaced by BOS when the tokenizer adds one. Only
// the second half is scored: for positions j in [n_ctx/2, n_ctx - 1) the logits at j predict
// token j + 1, so every scored prediction sees at least n_ctx/2 tokens of context. That gives
// n_ctx - 1 - n_ctx/2 predictions per window.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "engine/model.h"

namespace zen::engine {

struct PerplexityParams {
  int n_ctx = 512;       // window length in tokens
  int threads = 1;
  int32_t bos = -1;      // replaces each window's first token when >= 0
  size_t max_windows = 0;  // 0: every full window
};

struct PerplexityResult {
  size_t n_windows = 0;
  size_t n_scored = 0;      // predictions scored
  double nll = 0;           // mean negative log-likelihood (nats per token)
  double nll_stderr = 0;    // standard error of that mean
  double ppl = 0;           // exp(nll)
  // With a base model (otherwise zero):
  double base_nll = 0, base_ppl = 0;
  double kl_mean = 0;       // mean over predictions of KL(base || model), nats
  double kl_max = 0;
  double top1_agree = 0;    // fraction of predictions where both models' argmax agree
};

// Progress: windows done, windows in all, the running perplexity.
using PerplexityProgress = std::function<void(size_t done, size_t total, double ppl)>;

// `base` may be null. Both models need the head and embedding (whole models) and the same
// vocabulary size. Throws std::invalid_argument when fewer than n_ctx tokens are given.
PerplexityResult compute_perplexity(std::shared_ptr<const Model> model, std::shared_ptr<const Model> base,
                                    std::span<const int32_t> tokens, const PerplexityParams& params,
                                    const PerplexityProgress& progress = {});

}  // namespace zen::engine
