// Stage runners chained through the wire codec (every message encoded to bytes and decoded
// again, as between two nodes) give last-position logits bit-identical to one Context over
// the whole model, for every split, with the default f32 activations; f16 on the wire stays
// close but is not exact.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "engine/synth.h"
#include "node/stage.h"
#include "transport/codec.h"
#include "tests/node/stage_pipeline.h"
#include "transport/tensor.h"

namespace zen::node {
namespace {

namespace fs = std::filesystem;

using testing::Pipeline;

// Prompt, then 3 decode steps feeding back the sampled token; returns every logits row.
std::vector<float> run(Pipeline& p, const std::vector<int32_t>& prompt) {
  transport::StartRequest start{1, {0}, {0.0f, 0, 1.0f, 0.0f, 1.0f, 64, 1}, prompt};
  p.stages.back()->start_request(start);
  transport::Forward f{1, {}, {}, {}, {}, true, true, {}};
  for (size_t i = 0; i < prompt.size(); ++i) {
    f.seq_ids.push_back(0);
    f.positions.push_back(static_cast<int32_t>(i));
    f.tokens.push_back(prompt[i]);
  }
  std::vector<float> all;
  int32_t pos = static_cast<int32_t>(prompt.size());
  for (int step = 0; step < 4; ++step) {
    const auto r = p.step(std::move(f));
    if (!r) {
      ADD_FAILURE() << "no result";
      return all;
    }
    const auto logits = transport::decode_activations(r->logits);
    all.insert(all.end(), logits.begin(), logits.end());
    f = transport::Forward{1, {0}, {pos++}, {r->tokens.front()}, {}, true, true, {}};
  }
  return all;
}
TEST(StagePipeline, F32WireGivesBitIdenticalLogitsForEverySplit) {
  const fs::path path = fs::temp_directory_path() / ("zen-stage-pipeline-" + std::to_string(::getpid()) + ".gguf");
  engine::SynthParams p;
  p.arch = "qwen2";
  p.n_layer = 4;
  p.n_vocab = 320;
  p.mix = engine::Mix::Q4_K_M;
  p.threads = 2;
  engine::write_synth_model(p, path.string());
  const std::vector<int32_t> prompt = {1, 17, 200, 45, 9, 300, 12};
  const auto whole = [&] { Pipeline p(path.string(), {0, 4}, transport::DType::f32); return run(p, prompt); }();
  ASSERT_EQ(whole.size(), 4u * 320u);
  for (const auto& bounds : std::vector<std::vector<int>>{{0, 1, 4}, {0, 2, 4}, {0, 3, 4}, {0, 1, 2, 3, 4}, {0, 2, 3, 4}}) {
    const auto split = [&] { Pipeline p(path.string(), bounds, transport::DType::f32); return run(p, prompt); }();
    ASSERT_EQ(split.size(), whole.size());
    EXPECT_EQ(0, std::memcmp(split.data(), whole.data(), whole.size() * sizeof(float))) << bounds.size() - 1 << " stages";
  }
  const auto f16 = [&] { Pipeline p(path.string(), {0, 2, 4}, transport::DType::f16); return run(p, prompt); }();
  double max_diff = 0;
  for (size_t i = 0; i < whole.size(); ++i) max_diff = std::max(max_diff, static_cast<double>(std::abs(f16[i] - whole[i])));
  EXPECT_GT(max_diff, 0.0) << "f16 on the wire should round";
  EXPECT_LT(max_diff, 0.05);
  fs::remove(path);
}

}  // namespace
}  // namespace zen::node
