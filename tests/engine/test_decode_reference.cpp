// The single-token decode path with a KV cache reproduces llama.cpp's generation logits,
// and greedy generation on stories260K gives exactly llama.cpp's 32 tokens.
#include <gtest/gtest.h>

#include "engine/generate.h"
#include "tests/engine/testdata.h"

namespace zen {
namespace {

using test::testdata_dir;

// Feeds the prompt as one batch, then each reference token one at a time, collecting the
// logits that chose each generated token (row 0 = last prompt row).
std::vector<float> decode_logits(const std::string& model_path, const std::vector<int32_t>& prompt,
                                 const std::vector<int32_t>& generated, std::vector<int32_t>* greedy) {
  auto model = engine::Model::load(model_path);
  engine::ContextParams cp;
  cp.n_ctx = 256;
  cp.n_threads = 2;
  engine::Context ctx(model, cp);
  std::vector<engine::BatchRow> rows(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i) rows[i] = {0, static_cast<int32_t>(i), prompt[i], i + 1 == prompt.size()};
  std::vector<float> logits, all;
  ctx.forward(rows, nullptr, logits);
  for (size_t s = 0; s < generated.size(); ++s) {
    all.insert(all.end(), logits.begin(), logits.end());
    greedy->push_back(engine::argmax(logits));
    if (s + 1 == generated.size()) break;
    engine::BatchRow r{0, static_cast<int32_t>(prompt.size() + s), generated[s], true};
    ctx.forward(std::span<const engine::BatchRow>(&r, 1), nullptr, logits);
  }
  return all;
}

class DecodeReference : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeReference, Gen16Logits) {
  ZEN_REQUIRE_TESTDATA();
  const std::string stem = GetParam();
  const auto dir = testdata_dir();
  const auto json = dir / "logits" / (stem + ".pattern64-gen16.json");
  const auto prompt = test::json_int_array(json, "prompt_tokens");
  const auto gen = test::json_int_array(json, "generated_tokens");
  ASSERT_EQ(gen.size(), 16u);
  std::vector<int32_t> greedy;
  const auto ours = decode_logits((dir / "models" / (stem + ".gguf")).string(), prompt, gen, &greedy);
  const auto ref = test::read_f32(dir / "logits" / (stem + ".pattern64-gen16-logits.f32"));
  ASSERT_EQ(ours.size(), ref.size());
  const auto d = test::diff(ours, ref);
  if (stem.find("-F32") != std::string::npos) {
    EXPECT_LT(d.max_abs, 1e-4) << "rms " << d.rms;
  } else {
    // Quantized: same bounds as the prompt logits (5e-2 max; rms well inside quantization noise).
    EXPECT_LT(d.max_abs, 5e-2) << "rms " << d.rms;
    EXPECT_LT(d.rms, 1e-2) << "max " << d.max_abs;
  }
}

INSTANTIATE_TEST_SUITE_P(Synth, DecodeReference,
                         ::testing::Values("synth-llama-F32", "synth-qwen2-F32", "synth-qwen3-F32",
                                           "synth-llama-Q8_0", "synth-llama-Q4_K_M"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

TEST(DecodeReferenceReal, Stories260KGen32) {
  ZEN_REQUIRE_TESTDATA();
  const auto dir = testdata_dir();
  const auto json = dir / "logits" / "stories260K.gen32.json";
  const auto prompt = test::json_int_array(json, "prompt_tokens");
  const auto gen = test::json_int_array(json, "generated_tokens");
  ASSERT_EQ(gen.size(), 32u);
  std::vector<int32_t> greedy;
  const auto ours = decode_logits((dir / "models" / "stories260K.gguf").string(), prompt, gen, &greedy);
  const auto d = test::diff(ours, test::read_f32(dir / "logits" / "stories260K.gen32-logits.f32"));
  EXPECT_LT(d.max_abs, 1e-4) << "rms " << d.rms;
  EXPECT_EQ(greedy, gen);
}

// The generation loop itself (sampler at temperature 0) gives the same 32 tokens.
TEST(DecodeReferenceReal, Stories260KGreedyGenerate) {
  ZEN_REQUIRE_TESTDATA();
  const auto dir = testdata_dir();
  const auto json = dir / "logits" / "stories260K.gen32.json";
  const auto prompt = test::json_int_array(json, "prompt_tokens");
  const auto gen = test::json_int_array(json, "generated_tokens");
  auto model = engine::Model::load((dir / "models" / "stories260K.gguf").string());
  engine::ContextParams cp;
  cp.n_threads = 1;
  engine::Context ctx(model, cp);
  engine::GenerateParams gp;
  gp.n_predict = 32;
  gp.sampler.temperature = 0;
  const auto out = engine::generate(ctx, 0, prompt, gp, nullptr);
  EXPECT_EQ(out, gen);
}

}  // namespace
}  // namespace zen
