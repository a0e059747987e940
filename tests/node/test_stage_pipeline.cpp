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
#include "transport/tensor.h"

namespace zen::node {
namespace {

namespace fs = std::filesystem;

// Round trip through the wire format.
template <typename T>
T over_the_wire(const T& m) {
  const auto bytes = transport::encode(transport::Message{m});
  auto decoded = transport::decode(bytes);
  if (!decoded.message) throw std::runtime_error("decode failed: " + decoded.error);
  return std::get<T>(*decoded.message);
}

struct Pipeline {
  std::vector<std::unique_ptr<StageRunner>> stages;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<transport::SampledTokens> results;

  Pipeline(const std::string& path, const std::vector<int>& bounds, transport::DType act) {
    auto file = engine::GgufModelFile::open(path);
    const size_t n = bounds.size() - 1;
    stages.resize(n);
    for (size_t i = n; i-- > 0;) {  // last first, so each stage can hand on to the next
      engine::SliceSpec spec{bounds[i], bounds[i + 1], i == 0, i + 1 == n};
      StageOptions so;
      so.context.n_ctx = 64;
      so.context.n_threads = 2;
      so.activation = act;
      so.return_logits = true;
      StageRunner* next = i + 1 < n ? stages[i + 1].get() : nullptr;
      stages[i] = std::make_unique<StageRunner>(engine::Model::load(file, spec), so, [this, next](StageRunner::Output&& out) {
        if (auto* f = std::get_if<transport::Forward>(&out)) {
          next->submit(over_the_wire(*f));
        } else if (auto* s = std::get_if<transport::SampledTokens>(&out)) {
          std::lock_guard<std::mutex> lk(mu);
          results.push_back(over_the_wire(*s));
          cv.notify_all();
        } else {
          ADD_FAILURE() << std::get<transport::Error>(out).message;
        }
      });
    }
  }

  // Prompt, then 3 decode steps feeding back the sampled token; returns every logits row.
  std::vector<float> run(const std::vector<int32_t>& prompt) {
    transport::StartRequest start{1, {0}, {0.0f, 0, 1.0f, 0.0f, 1.0f, 64, 1}, prompt};
    stages.back()->start_request(start);
    transport::Forward f{1, {}, {}, {}, {}, true, true};
    for (size_t i = 0; i < prompt.size(); ++i) {
      f.seq_ids.push_back(0);
      f.positions.push_back(static_cast<int32_t>(i));
      f.tokens.push_back(prompt[i]);
    }
    std::vector<float> all;
    int32_t pos = static_cast<int32_t>(prompt.size());
    for (int step = 0; step < 4; ++step) {
      stages.front()->submit(std::move(f));
      std::unique_lock<std::mutex> lk(mu);
      if (!cv.wait_for(lk, std::chrono::seconds(30), [&] { return results.size() == static_cast<size_t>(step + 1); })) {
        ADD_FAILURE() << "no result";
        return all;
      }
      const auto& r = results.back();
      const auto logits = transport::decode_activations(r.logits);
      all.insert(all.end(), logits.begin(), logits.end());
      f = transport::Forward{1, {0}, {pos++}, {r.tokens.front()}, {}, true, true};
    }
    return all;
  }
};

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
  const auto whole = Pipeline(path.string(), {0, 4}, transport::DType::f32).run(prompt);
  ASSERT_EQ(whole.size(), 4u * 320u);
  for (const auto& bounds : std::vector<std::vector<int>>{{0, 1, 4}, {0, 2, 4}, {0, 3, 4}, {0, 1, 2, 3, 4}, {0, 2, 3, 4}}) {
    const auto split = Pipeline(path.string(), bounds, transport::DType::f32).run(prompt);
    ASSERT_EQ(split.size(), whole.size());
    EXPECT_EQ(0, std::memcmp(split.data(), whole.data(), whole.size() * sizeof(float))) << bounds.size() - 1 << " stages";
  }
  const auto f16 = Pipeline(path.string(), {0, 2, 4}, transport::DType::f16).run(prompt);
  double max_diff = 0;
  for (size_t i = 0; i < whole.size(); ++i) max_diff = std::max(max_diff, static_cast<double>(std::abs(f16[i] - whole[i])));
  EXPECT_GT(max_diff, 0.0) << "f16 on the wire should round";
  EXPECT_LT(max_diff, 0.05);
  fs::remove(path);
}

}  // namespace
}  // namespace zen::node
