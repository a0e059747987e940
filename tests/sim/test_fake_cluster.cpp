// In-process clusters over FakeLink (tests/sim/fake_cluster.h): shaped links give the same greedy
// tokens as one node; drops, stalls and cut links end a request with a clear error (or it
// recovers), never a hang; a slow node shows in the measured stage time.
#include <gtest/gtest.h>

#include <fstream>

#include "engine/generate.h"
#include "engine/synth.h"
#include "engine/tokenizer.h"
#include "node/slice_file.h"
#include "tests/node/cluster_harness.h"
#include "tests/sim/fake_cluster.h"

namespace zen::test {
namespace {

// A tiny random model: 6 layers, fast enough for many requests per second.
std::string tiny_model(const fs::path& dir) {
  engine::SynthParams p;
  p.n_layer = 6;
  p.n_embd = 128;
  p.n_ff = 256;
  p.n_head = 4;
  p.n_head_kv = 2;
  p.n_vocab = 320;
  p.n_ctx = 256;
  p.mix = engine::Mix::Q8_0;
  const std::string path = (dir / "model.gguf").string();
  engine::write_synth_model(p, path);
  return path;
}

std::vector<int32_t> prompt() { return {1, 17, 42, 99, 7, 250, 31}; }

// Greedy tokens from one process, stopping where the coordinator stops (end of generation).
std::vector<int32_t> one_node_tokens(const std::string& path, int n) { return single_node_tokens(path, prompt(), n); }

transport::FakeLinkConditions shaped(int latency_us, double bytes_per_s) {
  transport::FakeLinkConditions c;
  c.latency = std::chrono::microseconds(latency_us);
  c.bandwidth_bytes_per_s = bytes_per_s;
  return c;
}

TEST(FakeCluster, ThreeNodesOverShapedLinksGiveOneNodesGreedyTokens) {
  const fs::path dir = temp_dir("same");
  const std::string model = tiny_model(dir);
  const auto expect = one_node_tokens(model, 24);
  ASSERT_FALSE(expect.empty());
  FakeNodeSpec w{shaped(2000, 2e6), shaped(2000, 2e6)};  // 2 ms, 16 Mbit each way
  FakeCluster c(model, dir / "cluster", {w, w}, {2, 2, 2});
  ASSERT_TRUE(c.wait_ready(3));
  const CompletionResult r = c.complete(prompt(), 24);
  EXPECT_EQ(r.finish_reason == "length" || r.finish_reason == "stop", true) << r.finish_reason << " " << r.error;
  EXPECT_EQ(r.tokens, expect);
  // Each token crosses coordinator -> w1 -> coordinator -> w2 -> coordinator: at least 4 x 2 ms.
  EXPECT_GE(r.seconds, 0.008 * static_cast<double>(r.tokens.size()));
}

// What may end a request whose stage was lost: an error naming the cause, or a recovery that
// still gives the right tokens. Never a hang.
void expect_error_or_recovery(const CompletionResult& r, const std::vector<int32_t>& expect) {
  ::testing::Test::RecordProperty("outcome", r.finish_reason + (r.error.empty() ? "" : ": " + r.error));
  ASSERT_NE(r.finish_reason, "timeout") << "the request hung";
  if (r.finish_reason == "error") {
    EXPECT_FALSE(r.error.empty());
  } else {
    EXPECT_EQ(r.tokens, expect) << r.finish_reason;
  }
}

TEST(FakeCluster, CutLinkEndsTheRequestNeverHangs) {
  const fs::path dir = temp_dir("cut");
  const std::string model = tiny_model(dir);
  const auto expect = one_node_tokens(model, 200);
  FakeNodeSpec w{shaped(5000, 0), shaped(5000, 0)};
  FakeCluster c(model, dir / "cluster", {w, w}, {2, 2, 2});
  ASSERT_TRUE(c.wait_ready(3));
  std::thread cut([&] {
    std::this_thread::sleep_for(150ms);
    c.worker_end(1).disconnect("cable cut");
  });
  const CompletionResult r = c.complete(prompt(), 200, 15000ms);
  cut.join();
  expect_error_or_recovery(r, expect);
}

TEST(FakeCluster, StalledNodeHitsTheReadDeadlineNeverHangs) {
  const fs::path dir = temp_dir("stall");
  const std::string model = tiny_model(dir);
  const auto expect = one_node_tokens(model, 200);
  FakeNodeSpec w{shaped(1000, 0), shaped(1000, 0)};
  w.to_coordinator.stall_timeout = 400ms;  // like AsioLink's read deadline
  FakeCluster c(model, dir / "cluster", {w, w}, {2, 2, 2});
  ASSERT_TRUE(c.wait_ready(3));
  std::thread stall([&] {
    std::this_thread::sleep_for(100ms);
    c.worker_end(0).stall(true);
  });
  const CompletionResult r = c.complete(prompt(), 200, 15000ms);
  stall.join();
  expect_error_or_recovery(r, expect);
}

// A message lost without the link closing (FakeLink drops; TCP itself never loses one, but a
// relay that discards could): the coordinator's step deadline (limits.step_timeout, 1 s here)
// re-reads the request from its history, and after three stalls fails it with a clear error.
TEST(FakeCluster, DroppedMessagesEndTheRequestNeverHang) {
  const fs::path dir = temp_dir("drop");
  const std::string model = tiny_model(dir);
  const auto expect = one_node_tokens(model, 100);
  FakeNodeSpec w{shaped(500, 0), shaped(500, 0)};
  FakeCluster c(model, dir / "cluster", {w, w}, {2, 2, 2});
  ASSERT_TRUE(c.wait_ready(3));
  transport::FakeLinkConditions lossy = shaped(500, 0);
  lossy.drop_rate = 0.2;  // a link that loses messages silently (TCP never does: a broken relay)
  c.worker_end(1).set_conditions(lossy);
  const CompletionResult r = c.complete(prompt(), 100, 15000ms);
  expect_error_or_recovery(r, expect);
}

TEST(FakeCluster, SlowNodeShowsInTheMeasuredStageTime) {
  const fs::path dir = temp_dir("slow");
  const std::string model = tiny_model(dir);
  FakeNodeSpec fast{shaped(1000, 0), shaped(1000, 0)};
  FakeNodeSpec slow = fast;
  slow.compute_delay = 30ms;
  FakeCluster c(model, dir / "cluster", {fast, slow, fast}, {1, 2, 2, 1});
  ASSERT_TRUE(c.wait_ready(4));
  const CompletionResult r = c.complete(prompt(), 20);
  ASSERT_EQ(r.finish_reason == "length" || r.finish_reason == "stop", true) << r.error;
  ASSERT_GE(r.tokens.size(), 5u);
  // Every stage pass costs the two 1 ms hops plus compute; the slow node adds its 30 ms. Only
  // lower bounds and differences: a busy machine makes every stage slower, never faster.
  EXPECT_GT(c.stage_ms(0), 2.0);
  EXPECT_GT(c.stage_ms(1), 30.0);
  EXPECT_GT(c.stage_ms(1), c.stage_ms(0) + 20.0) << c.stage_ms(0) << " vs " << c.stage_ms(1);
  EXPECT_GT(c.stage_ms(1), c.stage_ms(2) + 20.0) << c.stage_ms(2) << " vs " << c.stage_ms(1);
}

// A node that cannot load the stage it is given (out of memory mapping it) is left out: the
// coordinator re-plans over the others and serves, and /cluster says why the node is unused.
TEST(FakeCluster, NodeThatCannotLoadItsStageIsPlannedAround) {
  const fs::path dir = temp_dir("refuse");
  const std::string model = tiny_model(dir);
  const auto expect = one_node_tokens(model, 16);
  FakeNodeSpec ok{shaped(500, 0), shaped(500, 0)};
  FakeNodeSpec refuses = ok;
  refuses.refuse_stage = true;
  FakeCluster c(model, dir / "cluster", {ok, refuses}, {2, 2, 2});
  ASSERT_TRUE(c.wait_ready(1));
  const CompletionResult r = c.complete(prompt(), 16);
  EXPECT_TRUE(r.finish_reason == "length" || r.finish_reason == "stop") << r.finish_reason << " " << r.error;
  EXPECT_EQ(r.tokens, expect);
  const nlohmann::json info = c.coordinator().cluster_info();
  bool seen = false;
  for (const auto& n : info["nodes"]) {
    if (n["name"] != "w2") continue;
    seen = true;
    EXPECT_EQ(n["state"], "load failed");
    EXPECT_NE(n.value("load_error", std::string()).find("out of memory"), std::string::npos) << n.dump();
    EXPECT_TRUE(n["stage"].is_null());
  }
  EXPECT_TRUE(seen) << info.dump();
}

// A damaged slice in a worker's cache (a torn write) is dropped and fetched again: the worker
// still takes its stage and the tokens are right.
TEST(FakeCluster, DamagedCachedSliceIsFetchedAgain) {
  const fs::path dir = temp_dir("cache");
  const std::string model = tiny_model(dir);
  const auto expect = one_node_tokens(model, 16);
  const fs::path cached = dir / "cluster" / "w2" / "slices" /
                          node::slice_file_name(node::file_digest(model), node::SliceSpecFile{4, 6, false, true});
  fs::create_directories(cached.parent_path());
  {
    std::ofstream f(cached, std::ios::binary);
    f << "GGUF" << std::string(100, '\x7f');  // a header cut short
  }
  FakeNodeSpec ok{shaped(500, 0), shaped(500, 0)};
  FakeNodeSpec no_copy = ok;
  no_copy.has_model = false;
  FakeCluster c(model, dir / "cluster", {ok, no_copy}, {2, 2, 2});
  ASSERT_TRUE(c.wait_ready(3));
  const CompletionResult r = c.complete(prompt(), 16);
  EXPECT_TRUE(r.finish_reason == "length" || r.finish_reason == "stop") << r.finish_reason << " " << r.error;
  EXPECT_EQ(r.tokens, expect);
  EXPECT_GT(fs::file_size(cached), 104u);  // replaced by the transferred slice
}

}  // namespace
}  // namespace zen::test
