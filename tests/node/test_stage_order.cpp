// A stage does not read a long prompt before the other streams' decode steps: all of a prompt's
// chunks are queued at once, and the decode step of a stream that arrives behind them must not
// wait until the whole prompt is read. Results stay what they are alone.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <unistd.h>

#include "engine/synth.h"
#include "node/stage.h"

namespace zen::node {
namespace {

namespace fs = std::filesystem;

struct Outputs {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::pair<uint64_t, std::vector<int32_t>>> sampled;  // request, tokens, in emit order
  void add(StageRunner::Output&& o) {
    std::lock_guard lk(m);
    if (auto* s = std::get_if<transport::SampledTokens>(&o)) sampled.push_back({s->request_id, s->tokens});
    if (auto* e = std::get_if<transport::Error>(&o)) ADD_FAILURE() << e->message;
    cv.notify_all();
  }
  bool wait(size_t n) {
    std::unique_lock lk(m);
    return cv.wait_for(lk, std::chrono::seconds(30), [&] { return sampled.size() >= n; });
  }
};

transport::Forward rows(uint64_t id, uint32_t seq, const std::vector<int32_t>& tokens, int32_t pos0, bool logits) {
  transport::Forward f{id, {}, {}, {}, {}, logits, logits, {}};
  for (size_t i = 0; i < tokens.size(); ++i) {
    f.seq_ids.push_back(seq);
    f.positions.push_back(pos0 + static_cast<int32_t>(i));
    f.tokens.push_back(tokens[i]);
  }
  return f;
}

TEST(StageOrder, DecodeStepIsNotQueuedBehindALongPrompt) {
  const fs::path path = fs::temp_directory_path() / ("zen-stage-order-" + std::to_string(::getpid()) + ".gguf");
  engine::SynthParams p;
  p.n_layer = 4;
  p.n_embd = 256;
  p.n_ff = 512;
  p.n_vocab = 320;
  p.n_ctx = 1024;
  p.mix = engine::Mix::Q8_0;
  engine::write_synth_model(p, path.string());
  StageOptions so;
  so.context.n_threads = 1;
  so.context.n_ctx = 1024;
  so.context.max_seqs = 2;
  so.max_batch_rows = 64;
  Outputs out;
  StageRunner stage(engine::Model::load(path.string()), so, [&](StageRunner::Output&& o) { out.add(std::move(o)); });
  const transport::SamplingParams greedy{0.0f, 0, 1.0f, 0.0f, 1.0f, 64, 1};

  // Stream B is generating: its prompt is read and it has sampled a token.
  const std::vector<int32_t> b_prompt = {1, 5, 9, 13};
  stage.start_request({2, {1}, greedy, b_prompt, 0});
  stage.submit(rows(2, 1, b_prompt, 0, true));
  ASSERT_TRUE(out.wait(1));
  const int32_t b_next = out.sampled[0].second.front();

  // Request A's 512-token prompt arrives as 8 chunks of 64 rows, then B's next decode step.
  std::vector<int32_t> a_prompt(512);
  for (size_t i = 0; i < a_prompt.size(); ++i) a_prompt[i] = 3 + static_cast<int32_t>((i * 37) % 300);
  stage.start_request({1, {0}, greedy, a_prompt, 0});
  for (int c = 0; c < 8; ++c) {
    const std::vector<int32_t> chunk(a_prompt.begin() + 64 * c, a_prompt.begin() + 64 * (c + 1));
    stage.submit(rows(1, 0, chunk, 64 * c, c == 7));
  }
  stage.submit(rows(2, 1, {b_next}, static_cast<int32_t>(b_prompt.size()), true));
  ASSERT_TRUE(out.wait(3));
  std::lock_guard lk(out.m);
  ASSERT_EQ(out.sampled.size(), 3u);
  EXPECT_EQ(out.sampled[1].first, 2u) << "B's step waited for all of A's prompt";
  EXPECT_EQ(out.sampled[2].first, 1u);
  fs::remove(path);
}

}  // namespace
}  // namespace zen::node
