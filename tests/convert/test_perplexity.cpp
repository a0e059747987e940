// zen perplexity: the windowed NLL equals a direct computation, stories260K finds a story far
// more likely than the same words shuffled, KL of a model against itself is zero, and the KL
// of the synthetic llama quantizations against F32 orders Q8_0 < Q6_K < Q5_K_M < Q4_K_M < Q2_K.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "engine/forward.h"
#include "engine/perplexity.h"
#include "engine/tokenizer.h"
#include "tests/convert/convert_test_util.h"
#include "tests/engine/testdata.h"

namespace zen {
namespace {

using test::testdata_dir;

std::string model_path(const std::string& stem) { return (testdata_dir() / "models" / (stem + ".gguf")).string(); }

std::vector<int32_t> tokenize(const engine::Model& m, const std::string& text) {
  return engine::Tokenizer::from_gguf(m.file().gguf())->encode(text, true, false);
}

std::string shuffled_words(const std::string& text, uint32_t seed) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  std::mt19937 rng(seed);
  std::shuffle(words.begin(), words.end(), rng);
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

TEST(Perplexity, MatchesDirectComputation) {
  ZEN_REQUIRE_TESTDATA();
  auto model = engine::Model::load(model_path("stories260K"));
  const auto ids = tokenize(*model, test::training_corpus());
  engine::PerplexityParams p;
  p.n_ctx = 64;
  p.threads = 2;
  p.bos = 1;
  p.max_windows = 3;
  const auto r = engine::compute_perplexity(model, nullptr, ids, p);
  ASSERT_EQ(r.n_windows, 3u);
  ASSERT_EQ(r.n_scored, 3u * (64 - 1 - 32));

  // Direct: each window from an empty cache with BOS first, every position's logits, NLL of
  // the next token for positions 32..62.
  double sum = 0;
  for (int w = 0; w < 3; ++w) {
    std::vector<int32_t> win(ids.begin() + w * 64, ids.begin() + (w + 1) * 64);
    win[0] = 1;
    const auto logits = test::engine_logits(model_path("stories260K"), win);
    const int64_t V = model->hp().n_vocab;
    for (int j = 32; j < 63; ++j) {
      const float* row = &logits[static_cast<size_t>(j * V)];
      double mx = row[0], z = 0;
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
      for (int64_t v = 0; v < V; ++v) z += std::exp(row[v] - mx);
      sum += std::log(z) + mx - row[win[static_cast<size_t>(j + 1)]];
    }
  }
  EXPECT_NEAR(r.nll, sum / static_cast<double>(r.n_scored), 1e-6);
  EXPECT_NEAR(r.ppl, std::exp(sum / static_cast<double>(r.n_scored)), 1e-4);
}

TEST(Perplexity, Stories260KOnAStory) {
  ZEN_REQUIRE_TESTDATA();
  auto model = engine::Model::load(model_path("stories260K"));
  const std::string story = test::training_corpus();
  engine::PerplexityParams p;
  p.n_ctx = 128;
  p.threads = 2;
  p.bos = 1;
  const auto r = engine::compute_perplexity(model, nullptr, tokenize(*model, story), p);
  const auto s = engine::compute_perplexity(model, nullptr, tokenize(*model, shuffled_words(story, 5)), p);
  std::printf("[ stories260K ] story: %zu windows, PPL %.3f; words shuffled: PPL %.3f\n", r.n_windows, r.ppl, s.ppl);
  RecordProperty("ppl", std::to_string(r.ppl));
  EXPECT_GE(r.n_windows, 4u);
  // A 512-token model of children's stories: a story in its style is easy (low single digits
  // per token), the same words in random order are not.
  EXPECT_GT(r.ppl, 1.5);
  EXPECT_LT(r.ppl, 12.0);
  EXPECT_GT(s.ppl, 2.0 * r.ppl);
}

TEST(Perplexity, KlAgainstItselfIsZero) {
  ZEN_REQUIRE_TESTDATA();
  auto model = engine::Model::load(model_path("stories260K"));
  engine::PerplexityParams p;
  p.n_ctx = 128;
  p.threads = 2;
  p.bos = 1;
  const auto r = engine::compute_perplexity(model, model, tokenize(*model, test::training_corpus()), p);
  EXPECT_LT(r.kl_mean, 1e-9);
  EXPECT_DOUBLE_EQ(r.top1_agree, 1.0);
  EXPECT_DOUBLE_EQ(r.base_ppl, r.ppl);
}

TEST(Perplexity, RejectsShortTextAndMismatchedVocab) {
  ZEN_REQUIRE_TESTDATA();
  auto model = engine::Model::load(model_path("stories260K"));
  auto other = engine::Model::load(model_path("llama-2-tiny-random"));
  engine::PerplexityParams p;
  p.n_ctx = 64;
  const std::vector<int32_t> few(10, 5), many(200, 5);
  EXPECT_THROW(engine::compute_perplexity(model, nullptr, few, p), std::invalid_argument);
  EXPECT_THROW(engine::compute_perplexity(model, other, many, p), std::invalid_argument);
}

TEST(Perplexity, QuantKlOrdersAsExpected) {
  ZEN_REQUIRE_TESTDATA();
  auto base = engine::Model::load(model_path("synth-llama-F32"));
  const auto ids = tokenize(*base, test::training_corpus());
  engine::PerplexityParams p;
  p.n_ctx = 128;
  p.threads = 2;
  p.bos = 1;
  const std::vector<std::string> order = {"Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q2_K"};
  std::vector<double> kl;
  std::printf("[ synth-llama vs F32, %zu tokens, ctx %d ]\n| type | PPL | ln(PPL/PPL_F32) | mean KL | max KL | top-1 agree |\n",
              ids.size(), p.n_ctx);
  for (const std::string& t : order) {
    auto m = engine::Model::load(model_path("synth-llama-" + t));
    const auto r = engine::compute_perplexity(m, base, ids, p);
    std::printf("| %s | %.3f | %+.5f | %.6f | %.5f | %.2f %% |\n", t.c_str(), r.ppl, r.nll - r.base_nll, r.kl_mean, r.kl_max,
                100 * r.top1_agree);
    kl.push_back(r.kl_mean);
  }
  for (size_t i = 1; i < kl.size(); ++i) EXPECT_LT(kl[i - 1], kl[i]) << order[i - 1] << " vs " << order[i];
  EXPECT_GT(kl.front(), 0.0);
}

}  // namespace
}  // namespace zen
