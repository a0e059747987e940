// Speculative decoding through a pipeline of stages: a Forward carrying drafts comes back from
// the last stage as the accepted drafts plus one token, every stage rolls its cache back past
// rejected drafts on the next Forward, and the tokens equal plain greedy decoding whatever
// the drafts were. Streams split into one group per stage (micro-batches).
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "engine/synth.h"
#include "tests/node/stage_pipeline.h"

namespace zen::node {
namespace {

namespace fs = std::filesystem;
using testing::Pipeline;

struct Model {
  fs::path path = fs::temp_directory_path() / ("zen-stage-spec-" + std::to_string(::getpid()) + ".gguf");
  Model() {
    engine::SynthParams p;
    p.arch = "llama";
    p.n_layer = 4;
    p.n_vocab = 320;
    p.mix = engine::Mix::Q4_K_M;
    p.threads = 2;
    engine::write_synth_model(p, path.string());
  }
  ~Model() { fs::remove(path); }
};

const std::vector<int32_t> kPrompt = {1, 17, 200, 45, 9, 300, 12};

transport::Forward prompt_forward(uint64_t id, uint32_t seq) {
  transport::Forward f{id, {}, {}, {}, {}, true, true, {}};
  for (size_t i = 0; i < kPrompt.size(); ++i) {
    f.seq_ids.push_back(seq);
    f.positions.push_back(static_cast<int32_t>(i));
    f.tokens.push_back(kPrompt[i]);
  }
  return f;
}

void start(Pipeline& p, uint64_t id, uint32_t seq) {
  transport::StartRequest s{id, {seq}, {0.0f, 0, 1.0f, 0.0f, 1.0f, 64, 1}, kPrompt};
  p.stages.back()->start_request(s);
}

// Plain greedy: n tokens, one per step.
std::vector<int32_t> plain(Pipeline& p, int n) {
  start(p, 1, 0);
  auto r = p.step(prompt_forward(1, 0));
  std::vector<int32_t> out = {r->tokens.at(0)};
  int32_t pos = static_cast<int32_t>(kPrompt.size());
  while (static_cast<int>(out.size()) < n) {
    r = p.step(transport::Forward{1, {0}, {pos++}, {out.back()}, {}, true, true, {}});
    EXPECT_TRUE(r.has_value());
    if (!r) break;
    EXPECT_EQ(r->tokens.size(), 1u);
    out.push_back(r->tokens.at(0));
  }
  return out;
}

TEST(StageSpec, DraftsAreCheckedAndRejectedOnesRolledBack) {
  Model m;
  Pipeline ref_p(m.path.string(), {0, 2, 4}, transport::DType::f32);
  const std::vector<int32_t> ref = plain(ref_p, 30);

  Pipeline p(m.path.string(), {0, 1, 3, 4}, transport::DType::f32);
  start(p, 1, 0);
  auto r = p.step(prompt_forward(1, 0));
  std::vector<int32_t> out = {r->tokens.at(0)};
  int step = 0;
  size_t accepted_total = 0, drafted_total = 0;
  while (out.size() < ref.size()) {
    // Drafts from the reference: right ones, with the third wrong every other step (so the
    // stages must drop its keys and values and the token after it).
    const size_t at = out.size();
    std::vector<int32_t> draft;
    for (size_t i = 0; i < 4 && at + i < ref.size(); ++i) draft.push_back(ref[at + i]);
    const bool spoil = step % 2 == 1 && draft.size() >= 3;
    if (spoil) draft[2] = (draft[2] + 1) % 320;
    transport::Forward f{1, {0}, {static_cast<int32_t>(kPrompt.size() + at - 1)}, {out.back()}, {}, true, true, draft};
    for (size_t i = 0; i < draft.size(); ++i) {
      f.seq_ids.push_back(0);
      f.positions.push_back(f.positions[0] + 1 + static_cast<int32_t>(i));
      f.tokens.push_back(draft[i]);
    }
    r = p.step(std::move(f));
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->seq_ids, std::vector<uint32_t>(r->tokens.size(), 0u));
    const size_t accepted = r->tokens.size() - 1;
    EXPECT_EQ(accepted, spoil ? 2u : draft.size()) << "step " << step;
    accepted_total += accepted;
    drafted_total += draft.size();
    out.insert(out.end(), r->tokens.begin(), r->tokens.end());
    ++step;
  }
  out.resize(ref.size());
  EXPECT_EQ(out, ref);
  EXPECT_LT(step, 12) << "drafting should need far fewer passes than tokens";
  EXPECT_GT(accepted_total, drafted_total / 2);
}

TEST(StageSpec, StreamsSplitIntoAGroupPerStage) {
  Model m;
  // Two stages. Four sequences have read their prompts; a fifth reads a long one, and while
  // stage 0 is busy with it the four decode steps queue up together. Five live sequences over
  // two stages make groups of three: the four must not all go into one batch.
  Pipeline p(m.path.string(), {0, 2, 4}, transport::DType::f32, 600);
  for (uint32_t seq = 0; seq < 4; ++seq) {
    start(p, 10 + seq, seq);
    ASSERT_TRUE(p.step(prompt_forward(10 + seq, seq)).has_value());
  }
  EXPECT_EQ(p.stages.front()->max_batch_seqs(), 1u);
  transport::Forward big{20, {}, {}, {}, {}, true, true, {}};
  for (int32_t i = 0; i < 500; ++i) {
    big.seq_ids.push_back(4);
    big.positions.push_back(i);
    big.tokens.push_back(1 + i % 300);
  }
  start(p, 20, 4);
  const size_t before = p.results.size();
  p.stages.front()->submit(std::move(big));
  for (uint32_t seq = 0; seq < 4; ++seq)
    p.stages.front()->submit(transport::Forward{10 + seq, {seq}, {static_cast<int32_t>(kPrompt.size())}, {5}, {}, true, true, {}});
  std::unique_lock<std::mutex> lk(p.mu);
  ASSERT_TRUE(p.cv.wait_for(lk, std::chrono::seconds(30), [&] { return p.results.size() == before + 5; }));
  EXPECT_EQ(p.stages.front()->max_batch_seqs(), 3u);
}

// The decode steps of one round reach a stage one message at a time (the coordinator answers
// each sampled token as it handles it). The stage waits for the round's other steps, so they
// run as one batch instead of one by one; a ClearSequence stands for the step of the sequence
// it ends, so a finished stream does not hold the others up.
TEST(StageSpec, ARoundArrivingStepByStepRunsAsOneBatch) {
  Model m;
  Pipeline p(m.path.string(), {0, 4}, transport::DType::f32, 64, [](StageOptions& so) {
    so.gather_fraction = 1e9;  // a grace far longer than the gaps below, however slow the machine
    so.gather_max_seconds = 10;
  });
  for (uint32_t seq = 0; seq < 4; ++seq) {
    start(p, 10 + seq, seq);
    ASSERT_TRUE(p.step(prompt_forward(10 + seq, seq)).has_value());
  }
  ASSERT_EQ(p.stages.front()->max_batch_seqs(), 1u);
  auto round = [&](uint32_t n_seqs, int32_t pos) {
    const size_t before = p.results.size();
    const auto t0 = std::chrono::steady_clock::now();
    for (uint32_t seq = 0; seq < n_seqs; ++seq) {
      if (seq) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      p.stages.front()->submit(transport::Forward{10 + seq, {seq}, {pos}, {5}, {}, true, true, {}});
    }
    std::unique_lock<std::mutex> lk(p.mu);
    EXPECT_TRUE(p.cv.wait_for(lk, std::chrono::seconds(30), [&] { return p.results.size() == before + n_seqs; }));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  round(4, static_cast<int32_t>(kPrompt.size()));
  EXPECT_EQ(p.stages.front()->max_batch_seqs(), 4u) << "the four steps ran in more than one batch";
  // Sequence 3 ends: three steps make the round, well before the 10 s grace is up.
  p.stages.front()->clear(transport::ClearSequence{13, {3}});
  EXPECT_LT(round(3, static_cast<int32_t>(kPrompt.size()) + 1), 5.0);
  // One step of the round, then a new request's prompt behind it: the prompt makes the batch
  // worth running now, and it does not wait for the round.
  const size_t before = p.results.size();
  const auto t0 = std::chrono::steady_clock::now();
  p.stages.front()->submit(transport::Forward{10, {0}, {static_cast<int32_t>(kPrompt.size()) + 2}, {5}, {}, true, true, {}});
  start(p, 20, 5);
  p.stages.front()->submit(prompt_forward(20, 5));
  {
    std::unique_lock<std::mutex> lk(p.mu);
    ASSERT_TRUE(p.cv.wait_for(lk, std::chrono::seconds(30), [&] { return p.results.size() == before + 2; }));
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

// Over two stages the streams form groups, and a stage waits only for the rest of the first
// waiting step's group: three sequences that each run alone never wait for one another.
TEST(StageSpec, AGroupDoesNotWaitForAnotherGroup) {
  Model m;
  Pipeline p(m.path.string(), {0, 2, 4}, transport::DType::f32, 64, [](StageOptions& so) {
    so.gather_fraction = 1e9;
    so.gather_max_seconds = 10;
  });
  std::vector<int32_t> last(3);
  for (uint32_t seq = 0; seq < 3; ++seq) {
    start(p, 10 + seq, seq);
    auto r = p.step(prompt_forward(10 + seq, seq));
    ASSERT_TRUE(r.has_value());
    last[seq] = r->tokens.at(0);
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (int32_t i = 0; i < 3; ++i)
    for (uint32_t seq = 0; seq < 3; ++seq) {
      auto r = p.step(transport::Forward{10 + seq, {seq}, {static_cast<int32_t>(kPrompt.size()) + i}, {last[seq]}, {}, true, true, {}});
      ASSERT_TRUE(r.has_value());
      last[seq] = r->tokens.at(0);
    }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0)
      << "a stage waited for a group that was not coming";
}

}  // namespace
}  // namespace zen::node
