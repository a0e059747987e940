// Faults with real zen-node processes on 127.0.0.1 (stories260K split 2,2,1 over the
// coordinator and two workers; heartbeat 100 ms, failure timeout 2 s). Eight greedy requests
// stream at once; a worker is killed (-9) in the middle of generation, the last stage too,
// one during prompt processing: every request finishes with the text of an undisturbed run
// (seeded sampled requests too).
// A stall shorter than the timeout changes nothing; a longer one (a partition) is a node
// lost, then one that rejoins and is planned in again. A restarted coordinator gets its
// workers back; one that joins under load is planned in under the running requests. A model
// that no longer fits fails requests clearly and serves again when the node returns.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "tests/engine/testdata.h"
#include "tests/node/cluster_harness.h"

namespace zen::test {
namespace {

using Clock = std::chrono::steady_clock;

// The failure timeout leaves room for scheduling noise: the stops and stalls below stay at half
// of it or less, and on a busy 2-core machine under a sanitizer a running process can still be
// off the CPU for a few hundred milliseconds.
const std::vector<std::string> kHeartbeat = {"--heartbeat-interval", "100ms", "--failure-timeout", "2s"};
constexpr long kFailureTimeoutMs = 2000;
const std::vector<std::string> kPrompts = {"Once upon a time", "The little dog", "Lily wanted to", "One day, Tom",
                                           "The sun was", "A big red ball", "Mom said", "There was a bird"};
// Long enough that the eight streams are still generating when a fault hits, however late a
// busy machine delivers some streams' first tokens to their clients.
constexpr int kTokens = 400;

long ms_since(Clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds timeout = std::chrono::milliseconds(20000),
                std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(poll);
  }
  return f();
}

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

class ClusterFaults : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(testdata_dir() / "models" / "stories260K.gguf")) return;
    model_ = (testdata_dir() / "models" / "stories260K.gguf").string();
    for (const auto& p : kPrompts) expected_.push_back(single_node_text(model_, p, kTokens));
  }

  void SetUp() override {
    ZEN_REQUIRE_TESTDATA();
    dir_ = temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    cluster_ = std::make_unique<LocalCluster>(model_, 2, "2,2,1", dir_, std::vector<std::string>{}, true, kHeartbeat);
    ASSERT_TRUE(cluster_->wait_serving(3)) << cluster_->logs();
  }

  void TearDown() override {
    cluster_.reset();
    remove_later(dir_);
  }

  // Streams the eight prompts at once. `disturb` runs once every stream has at least
  // `min_chunks` chunks (0: once all are sent); returns the texts. The prompts wait at a
  // stopped w1 until all are sent, so the eight run in step (stories260K is fast).
  // `seeded`: sampled (temperature, top-k/p, repetition penalty) with seed 1000 + i, not greedy.
  std::vector<std::string> run_streams(int min_chunks, const std::function<void()>& disturb, bool seeded = false) {
    std::vector<Stream> streams(kPrompts.size());
    std::vector<std::thread> threads;
    cluster_->worker(0).signal(SIGSTOP);
    for (size_t i = 0; i < kPrompts.size(); ++i) {
      nlohmann::json params = nlohmann::json::object();
      if (seeded) params = {{"temperature", 0.9}, {"top_k", 40}, {"top_p", 0.95}, {"repeat_penalty", 1.1}, {"seed", 1000 + i}};
      threads.emplace_back([&, i, params] { cluster_->stream(kPrompts[i], kTokens, streams[i], params); });
    }
    // All eight in flight (held at the stopped w1) before it goes on: the coordinator's /metrics
    // says so, however slowly the client threads start on a busy machine.
    // (within 800 ms: w1 must stay stopped well under the failure timeout).
    eventually([&] { return cluster_->requests_active() == static_cast<int>(kPrompts.size()); }, std::chrono::milliseconds(800),
               std::chrono::milliseconds(5));
    if (min_chunks > 0) cluster_->worker(0).signal(SIGCONT);
    EXPECT_TRUE(eventually(
        [&] {
          for (auto& s : streams)
            if (s.chunks < min_chunks && !s.done) return false;
          return true;
        },
        std::chrono::milliseconds(20000), std::chrono::milliseconds(1)));
    int done = 0;
    std::string state;
    for (auto& s : streams) {
      done += s.done ? 1 : 0;
      state.append(" ").append(std::to_string(s.chunks)).append(s.done ? " done" : "");  // (GCC 12 -Wrestrict on " " + string)
    }
    disturb();
    EXPECT_EQ(done, 0) << "requests finished before the fault (chunks:" << state << "): generation too fast to test";
    for (auto& t : threads) t.join();
    std::vector<std::string> texts;
    for (auto& s : streams) texts.push_back(s.text);
    return texts;
  }

  void expect_undisturbed(const std::vector<std::string>& texts) {
    ASSERT_EQ(texts.size(), expected_.size());
    for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(texts[i], expected_[i]) << "request " << i << "\n" << cluster_->logs();
  }

  // The coordinator's own figure for its last recovery, "" if none.
  std::string recovery_line() {
    const std::string log = cluster_->coordinator().read_log();
    const size_t at = log.rfind("recovered: ");
    return at == std::string::npos ? "" : log.substr(at, log.find('\n', at) - at);
  }

  // Kills worker `i` (-9) while it is stopped mid-generation; every request resumes.
  void kill_mid_generation(int i) {
    Clock::time_point killed;
    const auto texts = run_streams(3, [&] {
      cluster_->worker(i).signal(SIGSTOP);  // freezes the pipeline with all eight in flight
      killed = Clock::now();
      cluster_->worker(i).kill(SIGKILL);
    });
    const long total = ms_since(killed);
    expect_undisturbed(texts);
    const std::string line = recovery_line();
    EXPECT_NE(line.find("resuming 8 of 8"), std::string::npos) << line << "\n" << cluster_->logs();
    std::printf("[ recovery ] kill -9 w%d: %s; all 8 done %ld ms after the kill\n", i + 1, line.c_str(), total);
  }

  static std::string model_;
  static std::vector<std::string> expected_;
  fs::path dir_;
  std::unique_ptr<LocalCluster> cluster_;
};
std::string ClusterFaults::model_;
std::vector<std::string> ClusterFaults::expected_;

TEST_F(ClusterFaults, KillMiddleWorkerDuringGenerationThenItRejoins) {
  kill_mid_generation(0);
  // It comes back: planned in again (3 stages), and serves the same text.
  cluster_->start_worker(0);
  ASSERT_TRUE(cluster_->wait_serving(3)) << cluster_->logs();
  EXPECT_EQ(cluster_->complete(kPrompts[0], kTokens), expected_[0]);
}

TEST_F(ClusterFaults, KillLastStageDuringGeneration) { kill_mid_generation(1); }

// Seeded sampling resumes with the random stream it had: the texts equal an undisturbed run's.
TEST_F(ClusterFaults, KillDuringSeededSamplingKeepsTheRandomStream) {
  const auto undisturbed = run_streams(1, [] {}, true);
  std::set<std::string> distinct(undisturbed.begin(), undisturbed.end());
  EXPECT_GT(distinct.size(), 4u);
  EXPECT_NE(undisturbed, expected_) << "sampling should differ from greedy";
  const auto texts = run_streams(3, [&] {
    cluster_->worker(1).signal(SIGSTOP);
    cluster_->worker(1).kill(SIGKILL);
  }, true);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(texts[i], undisturbed[i]) << "request " << i;
  EXPECT_NE(recovery_line().find("resuming 8 of 8"), std::string::npos) << cluster_->logs();
}

TEST_F(ClusterFaults, KillWorkerDuringPromptProcessing) {
  // w1 holds the eight prompts (it is stopped) when it is killed.
  const auto texts = run_streams(0, [&] { cluster_->worker(0).kill(SIGKILL); });
  expect_undisturbed(texts);
  std::printf("[ recovery ] kill -9 w1 holding 8 prompts: %s\n", recovery_line().c_str());
}

TEST_F(ClusterFaults, StallShorterThanTheTimeoutChangesNothing) {
  const auto plan = cluster_->cluster()["plan_id"];
  const auto texts = run_streams(3, [&] {
    cluster_->worker(0).signal(SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(kFailureTimeoutMs / 2));
    cluster_->worker(0).signal(SIGCONT);
  });
  expect_undisturbed(texts);
  EXPECT_EQ(cluster_->cluster()["plan_id"], plan);
  const std::string log = cluster_->coordinator().read_log();
  EXPECT_EQ(log.find("left"), std::string::npos) << log;
}

TEST_F(ClusterFaults, PartitionThatHealsIsALossThenARejoin) {
  Clock::time_point stopped;
  long declared = -1;
  const auto texts = run_streams(3, [&] {
    cluster_->worker(0).signal(SIGSTOP);
    stopped = Clock::now();
    EXPECT_TRUE(eventually([&] { return cluster_->coordinator().read_log().find("node w1 left") != std::string::npos; }));
    declared = ms_since(stopped);
    EXPECT_TRUE(eventually([&] { return !recovery_line().empty(); })) << cluster_->logs();
    cluster_->worker(0).signal(SIGCONT);
  });
  expect_undisturbed(texts);
  EXPECT_GE(declared, kFailureTimeoutMs - 100) << "declared gone before the failure timeout";
  EXPECT_LE(declared, kFailureTimeoutMs + 1000) << "not declared gone within the failure timeout";
  std::printf("[ recovery ] SIGSTOP w1: declared gone after %ld ms; %s\n", declared, recovery_line().c_str());
  // Healed: it reconnects, is admitted and planned in again.
  EXPECT_TRUE(eventually([&] { return count(cluster_->coordinator().read_log(), "node w1 joined") == 2; })) << cluster_->logs();
  ASSERT_TRUE(cluster_->wait_serving(3)) << cluster_->logs();
  EXPECT_EQ(cluster_->complete(kPrompts[1], kTokens), expected_[1]) << cluster_->logs();
}

TEST_F(ClusterFaults, CoordinatorRestartGetsItsWorkersBack) {
  EXPECT_EQ(cluster_->complete(kPrompts[2], kTokens), expected_[2]);
  const auto restarted = Clock::now();
  cluster_->restart_coordinator();
  ASSERT_TRUE(cluster_->wait_serving(3)) << cluster_->logs();
  std::printf("[ recovery ] coordinator restarted: serving with both workers %ld ms after the kill\n", ms_since(restarted));
  EXPECT_EQ(cluster_->complete(kPrompts[2], kTokens), expected_[2]);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(count(cluster_->worker(i).read_log(), "joined coordinator"), 2);
}

// A node that joins while requests run is planned in one failure timeout later, under them:
// they pause, resume on the new plan and finish with undisturbed text. Three workers, split
// 2,2,1: after w1 is killed, coord, w2 and w3 carry the split; w3 is held nearly still by
// stops (each shorter than the failure timeout) so the eight requests still run then.
void admission_run(const std::string& model, const fs::path& dir, const std::vector<std::string>& expected, int n);

TEST(ClusterAdmission, NodeJoiningUnderLoadIsPlannedInWithoutDroppingRequests) {
  ZEN_REQUIRE_TESTDATA();
  const std::string model = (testdata_dir() / "models" / "stories260K.gguf").string();
  constexpr int n = kTokens;  // long enough that all 8 still run when the node rejoins, also under sanitizers
  std::vector<std::string> expected;
  for (const auto& p : kPrompts) expected.push_back(single_node_text(model, p, n));
  const fs::path dir = temp_dir("admission");
  admission_run(model, dir, expected, n);  // the nodes stop before their folder goes
  remove_later(dir);
}

void admission_run(const std::string& model, const fs::path& dir, const std::vector<std::string>& expected, int n) {
  // Every message the coordinator sends waits 3 ms (hidden --bench-shape): stories260K computes
  // a pass in well under a millisecond, so without it a 25 ms window of the held node can run
  // hundreds of passes, and with a faster attention (tried, 8 runs) the requests ended before
  // w1 was back in 2 of them.
  LocalCluster c(model, 3, "2,2,1", dir, {"--bench-shape", "*:0.003:0:0"}, true, kHeartbeat);
  auto w1_has_stage = [&] {
    const auto cluster = c.cluster();
    if (!cluster.is_object() || !cluster.value("serving", false)) return false;
    for (const auto& node : cluster["nodes"])
      if (node["name"] == "w1" && node["stage"].is_object() && node["state"] == "ready") return true;
    return false;
  };
  ASSERT_TRUE(eventually(w1_has_stage)) << c.logs();  // all three joined: the split is coord, w1, w2
  c.worker(0).kill(SIGKILL);
  ASSERT_TRUE(eventually([&] { return c.coordinator().read_log().find("node w1 left") != std::string::npos; }));
  ASSERT_TRUE(c.wait_serving(3)) << c.logs();
  std::vector<Stream> streams(kPrompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kPrompts.size(); ++i) threads.emplace_back([&, i] { c.stream(kPrompts[i], n, streams[i]); });
  EXPECT_TRUE(eventually(
      [&] {
        for (auto& s : streams)
          if (s.chunks < 3) return false;
        return true;
      },
      std::chrono::milliseconds(20000), std::chrono::milliseconds(1)));
  std::atomic<bool> hold{true};
  std::thread holder([&] {
    while (hold) {
      c.worker(2).signal(SIGSTOP);
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
      c.worker(2).signal(SIGCONT);
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  });
  c.start_worker(0);
  const bool admitted = eventually([&] { return c.coordinator().read_log().find("improving the plan with") != std::string::npos; });
  hold = false;
  holder.join();
  c.worker(2).signal(SIGCONT);
  for (auto& t : threads) t.join();
  const std::string log = c.coordinator().read_log();
  EXPECT_TRUE(admitted) << c.logs();
  EXPECT_NE(log.find("improving the plan with 8 requests in flight"), std::string::npos) << c.logs();
  EXPECT_EQ(count(log, "left"), 1) << "the held node was declared gone:\n" << c.logs();
  for (size_t i = 0; i < streams.size(); ++i) EXPECT_EQ(streams[i].text, expected[i]) << "request " << i;
  EXPECT_TRUE(w1_has_stage()) << c.cluster().dump();  // planned in again
}

// ~38 MB of F32 weights; every node may use 52 MiB: three nodes hold it, two do not.
TEST(ClusterFit, ModelThatNoLongerFitsFailsClearlyThenServesAgain) {
  const fs::path dir = temp_dir("nofit");
  const std::string model = synth_model(dir, 3, 512, 1536, engine::Mix::F32);
  const std::string expect = single_node_text(model, "a b c", 8);
  std::vector<std::string> args = kHeartbeat;
  args.insert(args.end(), {"--memory", "52MiB", "--max-sequences", "1"});
  {  // the nodes stop before their folder goes
    LocalCluster c(model, 2, "", dir, {}, true, args);
    ASSERT_TRUE(c.wait_serving(3)) << c.logs();
    EXPECT_EQ(c.complete("a b c", 8), expect) << c.logs();
    // In flight when a stage goes: a clear error.
    Stream s;
    std::thread t([&] { c.stream("a b c", 200, s); });
    ASSERT_TRUE(eventually([&] { return s.chunks > 0 || s.done; }));
    c.worker(1).kill(SIGKILL);
    t.join();
    EXPECT_NE(s.text.find("does not fit"), std::string::npos) << s.text;
    // New requests too, at once.
    EXPECT_NE(c.complete("a b c", 8).find("does not fit"), std::string::npos);
    EXPECT_TRUE(c.cluster().contains("does_not_fit"));
    // The node returns: the cluster serves again.
    c.start_worker(1);
    ASSERT_TRUE(c.wait_serving(3)) << c.logs();
    EXPECT_EQ(c.complete("a b c", 8), expect) << c.logs();
  }
  remove_later(dir);
}

}  // namespace
}  // namespace zen::test
