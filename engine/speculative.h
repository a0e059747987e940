// Speculative decoding: propose k tokens cheaply, check them with one pass of the real model
// over k + 1 rows, keep the longest prefix the model agrees with plus one token of its own.
//
// Drafters: PromptLookup (the tokens that followed the latest earlier occurrence of the
// context's last n-gram: free, good at copying - code edits, summaries, quotes) and DraftModel
// (a small model with the same vocabulary, greedy or sampled).
//
// verify() applies the acceptance rule. Greedy: a draft is kept while it equals the target's
// choice, so the output is token-identical to plain greedy decoding. Sampling: the standard
// rejection rule (accept draft x with probability min(1, p(x) / q(x)), else draw from the
// normalised max(0, p - q)), so the output distribution is exactly the target sampler's.
// A deterministic drafter has q = 1 on its token.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/forward.h"
#include "engine/sampler.h"

namespace zen::engine {

struct Draft {
  std::vector<int32_t> tokens;
  std::vector<TokenDist> q;  // the drafter's distribution per token; empty: deterministic
};

// Up to k tokens that followed the most recent earlier occurrence of the history's last n
// tokens, trying n = max_ngram down to min_ngram. Empty when nothing matches.
std::vector<int32_t> prompt_lookup(std::span<const int32_t> history, int k, int max_ngram = 3, int min_ngram = 1);

// The acceptance rule. `logits` holds k + 1 rows of n_vocab: row i is the target model's output
// after the history extended by drafts[0..i). Returns the tokens to append (1 .. k + 1): the
// accepted drafts, then the target's own token. `history` is what the sampler looks back over
// (the ids so far); it is not modified.
std::vector<int32_t> verify(Sampler& sampler, std::span<const float> logits, size_t n_vocab,
                            std::span<const int32_t> history, const Draft& draft);

// How many tokens to draft next, from the acceptance rate seen so far: the k in [0, k_max]
// that maximises expected tokens per pass, (1 - a^(k+1)) / (1 - a), over the pass's relative
// cost, 1 + cost_per_draft * k.
int choose_draft_length(double acceptance, int k_max, double cost_per_draft);

// Running acceptance statistics of one sequence (or a whole service).
struct SpecStats {
  uint64_t passes = 0;    // verify passes
  uint64_t drafted = 0;   // draft tokens checked
  uint64_t accepted = 0;  // draft tokens kept
  uint64_t emitted = 0;   // tokens produced by verify passes (accepted + one per pass)
  double acceptance() const { return drafted ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0.0; }
  double tokens_per_pass() const { return passes ? static_cast<double>(emitted) / static_cast<double>(passes) : 0.0; }
  void add(const SpecStats& o) {
    passes += o.passes;
    drafted += o.drafted;
    accepted += o.accepted;
    emitted += o.emitted;
  }
};

// Chooses k for one sequence from its own recent acceptance (an exponential average, starting
// optimistic so drafting gets a chance).
class DraftLength {
 public:
  DraftLength(int k_max, double cost_per_draft) : k_max_(k_max), cost_(cost_per_draft) {}
  // k for the next pass; when drafting does not pay, 0, except for a probe of 1 every 8th pass
  // so that a sequence that starts repeating itself is noticed.
  int next();
  void record(int drafted, int accepted);
  double rate() const { return rate_; }

 private:
  int k_max_;
  double cost_;
  double rate_ = 0.7;
  int idle_ = 0;
};

// A small model that drafts for many sequences, each with its own KV cache. The draft model's
// cache follows each sequence's history: before drafting, whatever the target rejected is
// dropped and the missing tokens are read.
class DraftModel {
 public:
  DraftModel(std::shared_ptr<const Model> model, int n_ctx, int max_seqs, int n_threads);
  const Model& model() const { return *model_; }
  // k tokens continuing `history` for sequence `seq`. With a greedy sampler the drafts are
  // argmax (q left empty); otherwise they are drawn from `sampling`'s distribution on the draft
  // logits, with q recorded for the rejection rule.
  Draft draft(int32_t seq, std::span<const int32_t> history, int k, Sampler& sampler);
  void drop(int32_t seq);  // the sequence ended

 private:
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Context> ctx_;
  std::unordered_map<int32_t, std::vector<int32_t>> fed_;  // tokens in each sequence's draft cache
};

}  // namespace zen::engine
