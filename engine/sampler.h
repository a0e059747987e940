// Token sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty, seeded RNG.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace zen::engine {

struct SamplerParams {
  float temperature = 0.8f;   // <= 0: greedy (argmax, lowest id wins ties)
  int top_k = 40;             // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;
  uint64_t seed = 0xC0FFEE;
};

// The distribution a sampler draws from: candidate ids and their probabilities (summing to 1),
// most likely first. Greedy sampling gives one id with probability 1.
struct TokenDist {
  std::vector<int32_t> ids;
  std::vector<float> probs;
  float prob(int32_t id) const;  // 0 for an id outside the candidates
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // Chooses the next token from `logits` given the ids generated or read so far.
  // Same as draw(distribution(...)) but without building the distribution when greedy.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // The distribution sample() draws from: repetition penalty, top-k, top-p, min-p, temperature.
  TokenDist distribution(std::span<const float> logits, std::span<const int32_t> history);
  // One draw from d with this sampler's random stream (one uniform number).
  int32_t draw(const TokenDist& d);
  // A uniform number in [0, 1) from the same stream (speculative acceptance tests).
  double uniform();
  const SamplerParams& params() const { return p_; }
  // RNG state, so a resumed request continues with the same random stream.
  std::mt19937_64& rng() { return rng_; }

 private:
  struct Cand {
    int32_t id;
    float logit;
  };
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<Cand> cands_;
  std::vector<float> probs_;
  // Fills cands_ (penalised, filtered, sorted) and probs_ (at the temperature); false when greedy
  // (then cands_[0] is the argmax).
  bool prepare(std::span<const float> logits, std::span<const int32_t> history);
};

int32_t argmax(std::span<const float> logits);

}  // namespace zen::engine
