// Serving through a real 3-node loopback cluster: concurrent streams of mixed lengths each get
// exactly what they get alone (greedy), a client that leaves mid-stream cancels its request and
// every stage frees its KV cache, /metrics reports the cluster, and speculative decoding (prompt
// lookup; a draft model, good or poor) leaves greedy output unchanged.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <thread>

#include "tests/node/cluster_harness.h"

namespace zen::test {
namespace {

const std::vector<std::string> kHeartbeat = {"--heartbeat-interval", "200ms", "--failure-timeout", "3s"};

// Sum of the samples of a metric whose line starts with `prefix` (name and, optionally, labels).
double metric_sum(const std::string& text, const std::string& prefix, int* count = nullptr) {
  std::istringstream in(text);
  double sum = 0;
  int n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0 && (line[prefix.size()] == ' ' || line[prefix.size()] == '{')) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
      ++n;
    }
  if (count) *count = n;
  return sum;
}

std::string get_metrics(int port) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

// A streamed request whose client hangs up after `after` chunks.
void stream_and_leave(int port, const std::string& prompt, int after) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = nlohmann::json{{"prompt", prompt}, {"max_tokens", 200}, {"temperature", 0}, {"stream", true}}.dump();
  req.set_header("Content-Type", "application/json");
  int chunks = 0;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    chunks += static_cast<int>(std::count(data, data + n, '\n')) / 2;
    return chunks < after;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  c.send(req, res, err);
}

TEST(ClusterServing, ConcurrentStreamsEqualAloneAndALeavingClientFreesEveryStage) {
  const fs::path dir = temp_dir("serving");
  const std::string model = synth_model(dir, 4);
  const std::vector<std::pair<std::string, int>> cases = {
      {"the cat sat", 40}, {"a", 12}, {"once upon a time there was a very long prompt about nothing at all", 30},
      {"hello", 55}, {"x y z", 5}, {"numbers 1 2 3 4 5 6 7 8 9", 25}};
  std::vector<std::string> expect;
  for (const auto& [p, n] : cases) expect.push_back(single_node_text(model, p, n));
  LocalCluster c(model, 2, "2,1,1", dir, {}, true, kHeartbeat);
  ASSERT_TRUE(c.wait_serving(3)) << c.logs();
  std::vector<Stream> got(cases.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cases.size(); ++i)
    threads.emplace_back([&, i] { c.stream(cases[i].first, cases[i].second, got[i]); });
  threads.emplace_back([&] { stream_and_leave(c.http_port(), "the leaving client", 4); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(got[i].text, expect[i]) << "request " << i << "\n" << c.logs();
  // Every stage drops the sequences: KV cache back to zero on all three nodes.
  std::string m;
  double kv = -1;
  int nodes = 0;
  for (int i = 0; i < 50 && (kv != 0 || nodes < 3); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    m = get_metrics(c.http_port());
    kv = metric_sum(m, "zen_kv_cache_bytes", &nodes);
  }
  EXPECT_EQ(nodes, 3) << m;
  EXPECT_EQ(kv, 0) << m;
  EXPECT_EQ(metric_sum(m, "zen_requests_active"), 0) << m;
  EXPECT_EQ(metric_sum(m, "zen_requests_completed_total"), static_cast<double>(cases.size() + 1)) << m;
  EXPECT_GT(metric_sum(m, "zen_stage_busy_seconds_total"), 0) << m;
  EXPECT_GE(metric_sum(m, "zen_stage_passes_total{stage=\"2\"}"), 1) << m;
  EXPECT_GT(metric_sum(m, "zen_generated_tokens_total"), 100) << m;
  remove_later(dir);
}

// At most 2 sequences at once, and passes of at most 3 rows (prompts in 3-row chunks): the others
// wait their turn and every text is still the single-node one.
TEST(ClusterServing, RequestsBeyondMaxSequencesWaitTheirTurn) {
  const fs::path dir = temp_dir("admit");
  const std::string model = synth_model(dir, 4);
  std::vector<std::string> node_args = kHeartbeat;
  node_args.insert(node_args.end(), {"--max-sequences", "2", "--max-batch-tokens", "3"});
  LocalCluster c(model, 1, "2,2", dir, {}, true, node_args);
  ASSERT_TRUE(c.wait_serving(2)) << c.logs();
  EXPECT_NE(c.logs().find("max_batch_tokens=3"), std::string::npos) << c.logs();
  const std::vector<std::string> prompts = {"one", "two two", "three three three", "four", "five five"};
  std::vector<Stream> got(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) threads.emplace_back([&, i] { c.stream(prompts[i], 20, got[i]); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i)
    EXPECT_EQ(got[i].text, single_node_text(model, prompts[i], 20)) << "request " << i << "\n" << c.logs();
  remove_later(dir);
}

// Greedy completion with its usage block.
nlohmann::json complete_json(int port, const std::string& prompt, int max_tokens) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(120, 0);
  auto r = c.Post("/v1/completions", nlohmann::json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}}.dump(),
                  "application/json");
  if (!r || r->status != 200) return nullptr;
  return nlohmann::json::parse(r->body, nullptr, false);
}

TEST(ClusterServing, SpeculativeDecodingLeavesGreedyOutputUnchanged) {
  const fs::path dir = temp_dir("spec");
  const std::string model = synth_model(dir, 4);
  fs::create_directories(dir / "draft");
  const std::string poor = synth_model(dir / "draft", 1);  // same vocabulary, other weights
  const std::vector<std::pair<std::string, int>> cases = {
      {"one two three four one two three four one two three four one two", 40}, {"the cat sat", 30}};
  std::vector<std::string> expect;
  for (const auto& [p, n] : cases) expect.push_back(single_node_text(model, p, n));
  const std::vector<std::vector<std::string>> modes = {{"--lookup"}, {"--draft", model}, {"--draft", poor}};
  for (size_t mi = 0; mi < modes.size(); ++mi) {
    const auto& args = modes[mi];
    SCOPED_TRACE(args.back());
    LocalCluster c(model, 1, "2,2", dir / ("cluster" + std::to_string(mi)), args, true, kHeartbeat);
    ASSERT_TRUE(c.wait_serving(2)) << c.logs();
    uint64_t drafted = 0, accepted = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      const auto j = complete_json(c.http_port(), cases[i].first, cases[i].second);
      ASSERT_TRUE(j.is_object()) << c.logs();
      EXPECT_EQ(j["choices"][0]["text"].get<std::string>(), expect[i]) << c.logs();
      if (j["usage"].contains("speculative")) {
        drafted += j["usage"]["speculative"]["drafted_tokens"].get<uint64_t>();
        accepted += j["usage"]["speculative"]["accepted_tokens"].get<uint64_t>();
      }
    }
    EXPECT_GT(drafted, 0u) << "never speculated";
    if (args.back() == model) {
      EXPECT_EQ(accepted, drafted) << "the model drafting for itself must always agree";
    }
    const std::string m = get_metrics(c.http_port());
    EXPECT_EQ(metric_sum(m, "zen_spec_drafted_tokens_total"), static_cast<double>(drafted)) << m;
  }
  remove_later(dir);
}

}  // namespace
}  // namespace zen::test
