// Speculative decoding pieces: prompt lookup, the acceptance rule (greedy: exactly the target's
// choices; sampling: the output distribution is the target's, whatever the drafter proposes),
// and the choice of draft length.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/speculative.h"

namespace zen::engine {
namespace {

TEST(PromptLookup, ContinuesTheLatestLongestMatch) {
  // ... 7 8 9 [5 6] 1 2 ... 5 6 3 4 ... 5 6 -> the 2-gram "5 6" last occurred before "3 4".
  const std::vector<int32_t> h = {7, 8, 9, 5, 6, 1, 2, 11, 5, 6, 3, 4, 12, 5, 6};
  EXPECT_EQ(prompt_lookup(h, 2), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(prompt_lookup(h, 5), (std::vector<int32_t>{3, 4, 12, 5, 6}));
  // A 3-gram match wins over a more recent 1-gram one.
  const std::vector<int32_t> g = {1, 2, 3, 40, 41, 3, 50, 1, 2, 3};
  EXPECT_EQ(prompt_lookup(g, 2), (std::vector<int32_t>{40, 41}));
  EXPECT_EQ(prompt_lookup(g, 2, 1, 1), (std::vector<int32_t>{50, 1}));
  // The continuation stops at the end of the history.
  const std::vector<int32_t> r = {9, 9};
  EXPECT_EQ(prompt_lookup(r, 4), (std::vector<int32_t>{9}));
  EXPECT_TRUE(prompt_lookup(std::vector<int32_t>{1, 2, 3, 4}, 3).empty());
  EXPECT_TRUE(prompt_lookup(std::vector<int32_t>{1}, 3).empty());
  EXPECT_TRUE(prompt_lookup(h, 0).empty());
}

// Logits rows whose argmax is the given token (n_vocab 8).
std::vector<float> rows_with_argmax(const std::vector<int32_t>& best) {
  std::vector<float> l(best.size() * 8, 0.0f);
  for (size_t i = 0; i < best.size(); ++i) l[i * 8 + static_cast<size_t>(best[i])] = 5.0f;
  return l;
}

TEST(Verify, GreedyKeepsTheAgreeingPrefixPlusOne) {
  SamplerParams sp;
  sp.temperature = 0;
  Sampler s(sp);
  const std::vector<int32_t> hist = {1, 2};
  Draft d;
  d.tokens = {3, 4, 5};
  EXPECT_EQ(verify(s, rows_with_argmax({3, 4, 6, 7}), 8, hist, d), (std::vector<int32_t>{3, 4, 6}));
  EXPECT_EQ(verify(s, rows_with_argmax({3, 4, 5, 7}), 8, hist, d), (std::vector<int32_t>{3, 4, 5, 7}));
  EXPECT_EQ(verify(s, rows_with_argmax({0, 4, 5, 7}), 8, hist, d), (std::vector<int32_t>{0}));
  Draft none;
  EXPECT_EQ(verify(s, rows_with_argmax({6}), 8, hist, none), (std::vector<int32_t>{6}));
  EXPECT_THROW(verify(s, rows_with_argmax({3, 4}), 8, hist, d), std::invalid_argument);
}

TEST(Verify, GreedyHonoursRepetitionPenaltyOverAcceptedDrafts) {
  // Row 1 prefers 3 slightly over 4; once draft 3 is accepted, the penalty makes 4 win there.
  SamplerParams sp;
  sp.temperature = 0;
  sp.repeat_penalty = 2.0f;
  Sampler s(sp);
  std::vector<float> l(16, 0.0f);
  l[3] = 5.0f;                // row 0: 3
  l[8 + 3] = 3.0f;            // row 1: 3 (3.0) vs 4 (2.0): penalised 3 -> 1.5
  l[8 + 4] = 2.0f;
  Draft d;
  d.tokens = {3};
  EXPECT_EQ(verify(s, l, 8, std::vector<int32_t>{1}, d), (std::vector<int32_t>{3, 4}));
}

// The first token verify emits follows the target distribution p whatever q proposes.
void check_distribution(bool deterministic_draft) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  TokenDist q;
  q.ids = {1, 3, 0, 2};
  q.probs = {0.6f, 0.25f, 0.1f, 0.05f};
  SamplerParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  sp.seed = 11;
  Sampler target(sp);
  std::mt19937_64 draft_rng(5);
  std::vector<float> rows(logits);
  rows.insert(rows.end(), logits.begin(), logits.end());  // row 1 (after an accepted draft)
  const int n = 40000;
  std::vector<int> count(4, 0);
  for (int i = 0; i < n; ++i) {
    Draft d;
    if (deterministic_draft) {
      d.tokens = {1};
    } else {
      std::uniform_real_distribution<double> u(0, 1);
      const double r = u(draft_rng);
      double cum = 0;
      int32_t x = q.ids.back();
      for (size_t j = 0; j < q.ids.size(); ++j)
        if (r < (cum += q.probs[j])) {
          x = q.ids[j];
          break;
        }
      d.tokens = {x};
      d.q = {q};
    }
    const std::vector<int32_t> out = verify(target, rows, 4, std::vector<int32_t>{}, d);
    ASSERT_FALSE(out.empty());
    ++count[static_cast<size_t>(out[0])];
  }
  for (size_t t = 0; t < 4; ++t) {
    const double f = static_cast<double>(count[t]) / n, sd = std::sqrt(p[t] * (1 - p[t]) / n);
    EXPECT_NEAR(f, p[t], 5 * sd) << "token " << t;
  }
}

TEST(Verify, SampledOutputFollowsTheTargetWithADraftDistribution) { check_distribution(false); }
TEST(Verify, SampledOutputFollowsTheTargetWithADeterministicDraft) { check_distribution(true); }

TEST(DraftLength, FollowsAcceptance) {
  EXPECT_EQ(choose_draft_length(0.0, 8, 0.2), 0);
  EXPECT_EQ(choose_draft_length(0.1, 8, 0.2), 0);
  const int mid = choose_draft_length(0.6, 8, 0.2), high = choose_draft_length(0.95, 8, 0.2);
  EXPECT_GE(mid, 1);
  EXPECT_GT(high, mid);
  EXPECT_LE(high, 8);
  EXPECT_LT(choose_draft_length(0.95, 8, 1.0), high) << "dearer drafts, fewer of them";
  DraftLength dl(6, 0.2);
  EXPECT_GE(dl.next(), 1) << "starts by trying";
  for (int i = 0; i < 20; ++i) dl.record(4, 0);
  int probes = 0;
  for (int i = 0; i < 16; ++i) probes += dl.next();
  EXPECT_EQ(probes, 2) << "after constant rejection only a probe of 1 every 8th pass";
  for (int i = 0; i < 20; ++i) dl.record(4, 4);
  EXPECT_EQ(dl.next(), 6);
}

// Measured pass costs replace the linear prior: where 2 rows cost 1.7 passes but 4 rows barely
// more than 3 (the batched kernels' tiles), k lands where tokens per second peak.
TEST(DraftLength, FollowsMeasuredPassCosts) {
  PassCost pc(0.2);
  EXPECT_DOUBLE_EQ(pc.relative(5), 1.8) << "nothing measured: the prior";
  const double seconds[] = {0, 1.0, 1.7, 1.9, 1.95, 2.7, 2.9, 3.0, 3.05, 3.8};
  for (int rows = 2; rows <= 9; ++rows) pc.record(rows, 0.01 * seconds[rows]);
  EXPECT_DOUBLE_EQ(pc.relative(4), 1.6) << "no 1-row pass measured yet: still the prior";
  pc.record(1, 0.01);
  EXPECT_NEAR(pc.relative(4), 1.95, 1e-9);
  EXPECT_NEAR(pc.relative(12), 3.8 * (1 + 0.2 * 11) / (1 + 0.2 * 8), 1e-9) << "beyond the table: from the nearest";
  const auto measured = [&](int k) { return pc.relative(k + 1); };
  EXPECT_EQ(choose_draft_length(0.8, 8, measured), 3);
  EXPECT_EQ(choose_draft_length(0.8, 8, 0.2), 4) << "the linear prior would draft more";
  pc.record(1, 0.03);  // an average, not the last figure
  EXPECT_GT(pc.relative(4), 1.0);

  // Until a plain pass has been measured, every 8th pass is one.
  PassCost fresh(0.2);
  DraftLength dl(6, 0.2, &fresh);
  int plain = 0;
  for (int i = 0; i < 16; ++i) plain += dl.next() == 0;
  EXPECT_EQ(plain, 2);
  fresh.record(1, 0.01);
  for (int i = 0; i < 16; ++i) EXPECT_GT(dl.next(), 0) << "pass " << i;
}

}  // namespace
}  // namespace zen::engine
