#include "engine/speculative.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace zen::engine {

std::vector<int32_t> prompt_lookup(std::span<const int32_t> history, int k, int max_ngram, int min_ngram) {
  const size_t size = history.size();
  if (k <= 0 || size < 2) return {};
  min_ngram = std::max(1, min_ngram);
  for (int n = std::min<int>(max_ngram, static_cast<int>(size) - 1); n >= min_ngram; --n) {
    const auto tail = history.subspan(size - static_cast<size_t>(n));
    // The most recent earlier occurrence: it reflects the current text best.
    for (size_t j = size - static_cast<size_t>(n); j-- > 0;) {
      if (!std::equal(tail.begin(), tail.end(), history.begin() + static_cast<std::ptrdiff_t>(j))) continue;
      const size_t start = j + static_cast<size_t>(n);
      const size_t take = std::min(static_cast<size_t>(k), size - start);
      return {history.begin() + static_cast<std::ptrdiff_t>(start),
              history.begin() + static_cast<std::ptrdiff_t>(start + take)};
    }
  }
  return {};
}

namespace {

// max(0, p - q), normalised: where a rejected draft's replacement is drawn from. q empty means
// the draft was deterministic (q = 1 on `drafted`).
TokenDist residual(const TokenDist& p, const TokenDist* q, int32_t drafted) {
  TokenDist r;
  double sum = 0;
  for (size_t j = 0; j < p.ids.size(); ++j) {
    const float qj = q ? q->prob(p.ids[j]) : (p.ids[j] == drafted ? 1.0f : 0.0f);
    const float v = p.probs[j] - qj;
    if (v <= 0) continue;
    r.ids.push_back(p.ids[j]);
    r.probs.push_back(v);
    sum += v;
  }
  if (r.ids.empty()) return p;  // p <= q everywhere only by rounding: p itself is right
  for (float& v : r.probs) v = static_cast<float>(v / sum);
  return r;
}

}  // namespace

std::vector<int32_t> verify(Sampler& sampler, std::span<const float> logits, size_t n_vocab,
                            std::span<const int32_t> history, const Draft& draft) {
  const size_t k = draft.tokens.size();
  if (!draft.q.empty() && draft.q.size() != k) throw std::invalid_argument("verify: one q per draft token");
  if (logits.size() < (k + 1) * n_vocab)
    throw std::invalid_argument("verify: " + std::to_string(k) + " drafts need " + std::to_string(k + 1) + " rows of logits");
  const bool greedy = sampler.params().temperature <= 0;
  std::vector<int32_t> h(history.begin(), history.end());
  std::vector<int32_t> out;
  for (size_t i = 0; i <= k; ++i) {
    const std::span<const float> row = logits.subspan(i * n_vocab, n_vocab);
    if (greedy) {
      const int32_t t = sampler.sample(row, h);
      out.push_back(t);
      if (i == k || t != draft.tokens[i]) break;
      h.push_back(t);
      continue;
    }
    const TokenDist p = sampler.distribution(row, h);
    if (i == k) {
      out.push_back(sampler.draw(p));
      break;
    }
    const int32_t x = draft.tokens[i];
    const TokenDist* q = draft.q.empty() ? nullptr : &draft.q[i];
    const float qx = q ? q->prob(x) : 1.0f;
    if (qx > 0 && sampler.uniform() < static_cast<double>(p.prob(x)) / qx) {
      out.push_back(x);
      h.push_back(x);
      continue;
    }
    out.push_back(sampler.draw(residual(p, q, x)));
    break;
  }
  return out;
}

int choose_draft_length(double acceptance, int k_max, double cost_per_draft) {
  return choose_draft_length(acceptance, k_max, [cost_per_draft](int k) { return 1 + cost_per_draft * k; });
}

int choose_draft_length(double acceptance, int k_max, const std::function<double(int)>& pass_cost) {
  const double a = std::clamp(acceptance, 0.0, 0.999);
  int best_k = 0;
  double best = 1.0 / pass_cost(0);  // k = 0: one token per pass
  for (int k = 1; k <= k_max; ++k) {
    const double expected = (1 - std::pow(a, k + 1)) / (1 - a);
    const double v = expected / pass_cost(k);
    if (v > best) {
      best = v;
      best_k = k;
    }
  }
  return best_k;
}

void PassCost::record(int rows, double seconds) {
  if (rows < 1 || rows >= static_cast<int>(t_.size()) || !(seconds > 0)) return;
  double& t = t_[static_cast<size_t>(rows)];
  t = t > 0 ? 0.8 * t + 0.2 * seconds : seconds;
}

double PassCost::estimate(int rows) const {
  if (measured(rows)) return t_[static_cast<size_t>(rows)];
  int nearest = 0;
  for (int r = 1; r < static_cast<int>(t_.size()); ++r)
    if (t_[static_cast<size_t>(r)] > 0 && (nearest == 0 || std::abs(r - rows) < std::abs(nearest - rows))) nearest = r;
  return nearest == 0 ? 0.0 : t_[static_cast<size_t>(nearest)] * prior(rows) / prior(nearest);
}

double PassCost::relative(int rows) const {
  const double one = estimate(1), here = estimate(rows);
  if (!measured(1) || one <= 0 || here <= 0) return prior(rows);
  return here / one;
}

std::string PassCost::describe() const {
  std::string out;
  char buf[48];
  for (size_t r = 1; r < t_.size(); ++r)
    if (t_[r] > 0) {
      std::snprintf(buf, sizeof buf, "%s%zu:%.1f", out.empty() ? "" : " ", r, t_[r] * 1e3);
      out += buf;
    }
  return out.empty() ? "none measured" : out;
}

int DraftLength::next() {
  ++passes_;
  if (measured_ && !measured_->measured(1) && passes_ % 8 == 0) return 0;  // measure a plain pass
  int k = measured_ ? choose_draft_length(rate_, k_max_, [this](int d) { return measured_->relative(d + 1); })
                    : choose_draft_length(rate_, k_max_, cost_);
  // Now and then one draft more or fewer, so that the costs next to the chosen one are
  // measured too and not only extrapolated.
  if (measured_ && k > 0 && passes_ % 8 == 4) k = std::clamp(k + ((passes_ / 8) % 2 ? 1 : -1), 1, k_max_);
  if (k > 0) return k;
  if (++idle_ < 8) return 0;
  idle_ = 0;
  return 1;
}

void DraftLength::record(int drafted, int accepted) {
  if (drafted <= 0) return;
  const double r = static_cast<double>(accepted) / drafted;
  rate_ = 0.7 * rate_ + 0.3 * r;
}

DraftModel::DraftModel(std::shared_ptr<const Model> model, int n_ctx, int max_seqs, int n_threads)
    : model_(std::move(model)) {
  if (!model_->has_embed() || !model_->has_head()) throw std::invalid_argument("a draft model must be whole");
  ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_threads = n_threads;
  cp.max_seqs = max_seqs;
  cp.max_batch = 512;
  ctx_ = std::make_unique<Context>(model_, cp);
}

void DraftModel::drop(int32_t seq) {
  fed_.erase(seq);
  ctx_->clear_seq(seq);
}

Draft DraftModel::draft(int32_t seq, std::span<const int32_t> history, int k, Sampler& sampler) {
  Draft d;
  if (history.empty()) return d;
  k = std::min<int>(k, ctx_->n_ctx() - static_cast<int>(history.size()));
  if (k <= 0) return d;
  std::vector<int32_t>& fed = fed_[seq];
  // Keep the cached prefix the history still agrees with; the last token is always re-read so
  // that its logits come out.
  size_t keep = 0;
  while (keep < fed.size() && keep + 1 < history.size() && fed[keep] == history[keep]) ++keep;
  ctx_->truncate_seq(seq, static_cast<int32_t>(keep));
  fed.resize(keep);
  std::vector<BatchRow> rows;
  for (size_t i = keep; i < history.size(); ++i)
    rows.push_back({seq, static_cast<int32_t>(i), history[i], i + 1 == history.size()});
  std::vector<float> logits;
  ctx_->forward(rows, nullptr, logits);
  fed.insert(fed.end(), history.begin() + static_cast<std::ptrdiff_t>(keep), history.end());
  const bool greedy = sampler.params().temperature <= 0;
  std::vector<int32_t> h(history.begin(), history.end());
  for (int i = 0; i < k; ++i) {
    int32_t t;
    if (greedy) {
      t = sampler.sample(logits, h);
    } else {
      d.q.push_back(sampler.distribution(logits, h));
      t = sampler.draw(d.q.back());
    }
    d.tokens.push_back(t);
    h.push_back(t);
    if (i + 1 == k) break;
    const BatchRow r{seq, static_cast<int32_t>(fed.size()), t, true};
    ctx_->forward(std::span<const BatchRow>(&r, 1), nullptr, logits);
    fed.push_back(t);
  }
  return d;
}

}  // namespace zen::engine
