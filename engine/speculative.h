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
#include <functional>
#include <memory>
#include <span>
#include <string>
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
// Same, with the relative cost of a pass with k drafts (1 for k = 0) given by pass_cost(k).
int choose_draft_length(double acceptance, int k_max, const std::function<double(int)>& pass_cost);

// What passes really cost here, by rows (1 + drafted tokens), measured on passes of a lone
// sequence (drafting included). A linear model (each drafted row adds a fixed share) is far off
// on some machines: where a 2-row pass takes the batched kernels, it can cost 1.7x a 1-row
// pass while 4 rows cost little more than 2. Row counts not measured yet are estimated from the
// nearest measured one with the linear prior's shape; without a measured 1-row pass the prior
// is all there is.
class PassCost {
 public:
  explicit PassCost(double prior_per_row, int max_rows = 33) : prior_(prior_per_row), t_(static_cast<size_t>(max_rows) + 1, 0.0) {}
  void record(int rows, double seconds);
  bool measured(int rows) const { return rows >= 1 && rows < static_cast<int>(t_.size()) && t_[static_cast<size_t>(rows)] > 0; }
  // A pass of `rows` rows over a 1-row pass.
  double relative(int rows) const;
  // The measured table, "rows:ms ...", for logs.
  std::string describe() const;

 private:
  double prior(int rows) const { return 1 + prior_ * (rows - 1); }
  double estimate(int rows) const;  // seconds, or 0 when nothing is measured
  double prior_;
  std::vector<double> t_;  // exponential average of seconds by rows; 0: not measured
};

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
  // With `measured` (owned by the caller, outliving this), k follows measured pass costs.
  DraftLength(int k_max, double cost_per_draft, const PassCost* measured = nullptr)
      : k_max_(k_max), cost_(cost_per_draft), measured_(measured) {}
  // k for the next pass; when drafting does not pay, 0, except for a probe of 1 every 8th pass
  // so that a sequence that starts repeating itself is noticed. While no 1-row pass has been
  // measured, every 8th pass is a plain one, to measure it.
  int next();
  void record(int drafted, int accepted);
  double rate() const { return rate_; }

 private:
  int k_max_;
  double cost_;
  const PassCost* measured_;
  double rate_ = 0.7;
  int idle_ = 0;
  int passes_ = 0;
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
