#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace zen::engine {

int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("argmax of empty logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {
  if (!(p.top_p > 0)) throw std::invalid_argument("top_p must be > 0");
  if (p.min_p < 0 || p.min_p > 1) throw std::invalid_argument("min_p must be in [0, 1]");
  if (!(p.repeat_penalty > 0)) throw std::invalid_argument("repeat_penalty must be > 0");
  if (std::isnan(p.temperature)) throw std::invalid_argument("temperature is not a number");
}

float TokenDist::prob(int32_t id) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == id) return probs[i];
  return 0.0f;
}

bool Sampler::prepare(std::span<const float> logits, std::span<const int32_t> history) {
  const int32_t n_vocab = static_cast<int32_t>(logits.size());
  if (n_vocab == 0) throw std::invalid_argument("sampling from empty logits");
  cands_.resize(logits.size());
  for (int32_t i = 0; i < n_vocab; ++i) cands_[i] = {i, logits[i]};

  // Repetition penalty over the last repeat_last_n ids (each id once).
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n != 0) {
    const size_t n = p_.repeat_last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(p_.repeat_last_n));
    std::unordered_set<int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    for (int32_t id : seen) {
      if (id < 0 || id >= n_vocab) continue;
      float& l = cands_[id].logit;
      l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    }
  }

  if (p_.temperature <= 0) {
    size_t best = 0;
    for (size_t i = 1; i < cands_.size(); ++i)
      if (cands_[i].logit > cands_[best].logit) best = i;
    cands_[0] = cands_[best];
    cands_.resize(1);
    return false;
  }

  // Sort descending (stable on id for ties), keep top-k.
  auto by_logit = [](const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); };
  size_t keep = cands_.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < keep) {
    keep = static_cast<size_t>(p_.top_k);
    std::partial_sort(cands_.begin(), cands_.begin() + static_cast<std::ptrdiff_t>(keep), cands_.end(), by_logit);
  } else {
    std::sort(cands_.begin(), cands_.end(), by_logit);
  }
  cands_.resize(keep);

  // Softmax (at temperature 1) for top-p and min-p filtering, as llama.cpp's default chain does.
  auto softmax_into = [&](float temp) {
    probs_.resize(cands_.size());
    const float mx = cands_[0].logit;
    double sum = 0;
    for (size_t i = 0; i < cands_.size(); ++i) {
      probs_[i] = std::exp((cands_[i].logit - mx) / temp);
      sum += probs_[i];
    }
    for (float& p : probs_) p = static_cast<float>(p / sum);
  };
  softmax_into(1.0f);
  if (p_.top_p < 1.0f) {
    double cum = 0;
    size_t k = 0;
    for (; k < probs_.size(); ++k) {
      cum += probs_[k];
      if (cum >= p_.top_p) { ++k; break; }
    }
    cands_.resize(std::max<size_t>(1, std::min(k, cands_.size())));
    probs_.resize(cands_.size());
  }
  if (p_.min_p > 0) {
    const float floor = probs_[0] * p_.min_p;
    size_t k = 1;
    while (k < probs_.size() && probs_[k] >= floor) ++k;
    cands_.resize(k);
  }
  softmax_into(p_.temperature);
  return true;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  if (!prepare(logits, history)) return cands_[0].id;
  const double r = uniform();
  double cum = 0;
  for (size_t i = 0; i < probs_.size(); ++i) {
    cum += probs_[i];
    if (r < cum) return cands_[i].id;
  }
  return cands_.back().id;
}

TokenDist Sampler::distribution(std::span<const float> logits, std::span<const int32_t> history) {
  TokenDist d;
  if (!prepare(logits, history)) {
    d.ids = {cands_[0].id};
    d.probs = {1.0f};
    return d;
  }
  d.ids.reserve(cands_.size());
  for (const Cand& c : cands_) d.ids.push_back(c.id);
  d.probs = probs_;
  return d;
}

int32_t Sampler::draw(const TokenDist& d) {
  if (d.ids.empty()) throw std::invalid_argument("drawing from an empty distribution");
  const double r = uniform();
  double cum = 0;
  for (size_t i = 0; i < d.probs.size(); ++i) {
    cum += d.probs[i];
    if (r < cum) return d.ids[i];
  }
  return d.ids.back();
}

double Sampler::uniform() {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  return u(rng_);
}

}  // namespace zen::engine
