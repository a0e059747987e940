// Sampling rules, and clear errors for models the engine cannot run.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "engine/forward.h"
#include "engine/gguf_writer.h"
#include "engine/sampler.h"
#include "engine/synth.h"

namespace zen::engine {
namespace {

namespace fs = std::filesystem;

TEST(Sampler, GreedyTakesArgmaxLowestIdOnTies) {
  Sampler s(SamplerParams{0.0f});
  std::vector<float> l = {0.1f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDiffers) {
  std::vector<float> l(50);
  for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<float>(i % 7) * 0.3f;
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  auto draw = [&](uint64_t seed) {
    p.seed = seed;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.sample(l, {}));
    return out;
  };
  EXPECT_EQ(draw(42), draw(42));
  EXPECT_NE(draw(42), draw(43));
}

TEST(Sampler, TopKOneIsGreedyAndTopPKeepsTheHead) {
  std::vector<float> l = {1.0f, 5.0f, 4.9f, 0.0f};
  SamplerParams p;
  p.temperature = 1.5f;
  p.top_k = 1;
  p.seed = 7;
  Sampler k1(p);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(k1.sample(l, {}), 1);
  p.top_k = 0;
  p.top_p = 0.5f;  // the first token alone holds about half the mass at temperature 1
  p.min_p = 0;
  Sampler tp(p);
  std::map<int32_t, int> seen;
  for (int i = 0; i < 200; ++i) seen[tp.sample(l, {})]++;
  EXPECT_EQ(seen.count(0) + seen.count(3), 0u) << "tokens outside the nucleus were drawn";
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  std::vector<float> l = {10.0f, 9.5f, 0.0f, -3.0f};
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.1f;
  Sampler s(p);
  for (int i = 0; i < 200; ++i) {
    const int32_t t = s.sample(l, {});
    EXPECT_TRUE(t == 0 || t == 1) << t;
  }
}

TEST(Sampler, RepetitionPenaltyAvoidsRecentTokens) {
  std::vector<float> l = {2.0f, 1.9f, -5.0f};
  SamplerParams p;
  p.temperature = 0;
  p.repeat_penalty = 1.5f;
  Sampler s(p);
  std::vector<int32_t> hist = {0};
  EXPECT_EQ(s.sample(l, hist), 1);  // 2.0 / 1.5 < 1.9
  EXPECT_EQ(s.sample(l, {}), 0);
}

TEST(Sampler, RejectsBadParameters) {
  SamplerParams p;
  p.top_p = 0;
  EXPECT_THROW(Sampler{p}, std::invalid_argument);
  p = {};
  p.min_p = 2;
  EXPECT_THROW(Sampler{p}, std::invalid_argument);
}

fs::path tmp(const std::string& name) { return fs::temp_directory_path() / ("zen-err-" + std::to_string(::getpid()) + name); }

std::string error_of(const std::string& path) {
  try {
    Model::load(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(ModelErrors, UnsupportedArchitectureIsNamed) {
  GgufWriter w;
  w.set_string("general.architecture", "mamba");
  const auto p = tmp("arch.gguf");
  w.write(p.string());
  const std::string e = error_of(p.string());
  EXPECT_NE(e.find("unsupported architecture 'mamba'"), std::string::npos) << e;
  EXPECT_NE(e.find("llama, qwen2, qwen3"), std::string::npos) << e;
  fs::remove(p);
}

TEST(ModelErrors, MissingTensorIsNamed) {
  SynthParams sp;
  sp.n_layer = 1;
  sp.n_vocab = 300;
  const auto full = tmp("full.gguf");
  write_synth_model(sp, full.string());
  // Copy every key and every tensor but blk.0.ffn_up.weight.
  auto src = GgufModelFile::open(full.string());
  GgufWriter w;
  for (const auto& [k, v] : src->gguf().kv) w.set(k, v);
  for (const auto& t : src->gguf().tensors)
    if (t.name != "blk.0.ffn_up.weight")
      w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                   std::span<const std::byte>(src->tensor_data(t), t.bytes));
  const auto cut = tmp("cut.gguf");
  w.write(cut.string());
  const std::string e = error_of(cut.string());
  EXPECT_NE(e.find("missing tensor 'blk.0.ffn_up.weight'"), std::string::npos) << e;
  fs::remove(full);
  fs::remove(cut);
}

TEST(ModelErrors, TiedEmbeddingsRun) {
  SynthParams sp;
  sp.n_layer = 2;
  sp.n_vocab = 300;
  sp.tied_output = true;
  const auto p = tmp("tied.gguf");
  write_synth_model(sp, p.string());
  auto m = Model::load(p.string());
  EXPECT_TRUE(m->has_head());
  EXPECT_EQ(m->output().mat.data, m->tok_embd().mat.data);  // the head reuses the embedding
  ContextParams cp;
  cp.n_ctx = 16;
  Context ctx(m, cp);
  std::vector<BatchRow> rows = {{0, 0, 1, true}, {0, 1, 7, true}};
  std::vector<float> out;
  ctx.forward(rows, nullptr, out);
  ASSERT_EQ(out.size(), 2u * 300u);
  for (float v : out) ASSERT_TRUE(std::isfinite(v));
  fs::remove(p);
}

TEST(ForwardErrors, PositionsMustContinueTheCache) {
  SynthParams sp;
  sp.n_layer = 1;
  sp.n_vocab = 300;
  const auto p = tmp("pos.gguf");
  write_synth_model(sp, p.string());
  ContextParams cp;
  cp.n_ctx = 8;
  Context ctx(Model::load(p.string()), cp);
  std::vector<float> out;
  std::vector<BatchRow> gap = {{0, 1, 5, true}};
  EXPECT_THROW(ctx.forward(gap, nullptr, out), std::invalid_argument);
  std::vector<BatchRow> bad_token = {{0, 0, 300, true}};
  EXPECT_THROW(ctx.forward(bad_token, nullptr, out), std::invalid_argument);
  std::vector<BatchRow> rows;
  for (int i = 0; i < 9; ++i) rows.push_back({0, i, 1, i == 8});
  EXPECT_THROW(ctx.forward(rows, nullptr, out), std::length_error);
  EXPECT_EQ(ctx.seq_len(0), 0);  // nothing was half-written
  fs::remove(p);
}

}  // namespace
}  // namespace zen::engine
