// End to end: real zen-node processes on 127.0.0.1. Greedy output through the cluster's
// HTTP API equals a one-process run, for every split (forced and planned) on 1 to 4 nodes;
// a worker without the model receives its slice and reuses its cache after a restart; a model
// larger than every node's memory budget runs across three nodes.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "engine/sampler.h"
#include "tests/engine/testdata.h"
#include "tests/node/cluster_harness.h"

namespace zen::test {
namespace {

struct SplitCase {
  int workers;
  std::string split;
};

class ClusterSplits : public ::testing::TestWithParam<SplitCase> {};

// One process: the prompt as one batch, then one token at a time (greedy); the logits of every
// position that sampled a token, by position.
std::map<int, std::vector<float>> single_node_logits(const std::string& model_path, const std::string& prompt, int n) {
  auto model = engine::Model::load(model_path);
  auto tok = engine::Tokenizer::from_gguf(model->file().gguf());
  engine::ContextParams cp;
  cp.n_ctx = 256;
  cp.n_threads = 1;
  cp.max_seqs = 1;
  engine::Context ctx(model, cp);
  const std::vector<int32_t> ids = tok->encode(prompt, true, false);
  std::vector<engine::BatchRow> rows;
  for (size_t i = 0; i < ids.size(); ++i) rows.push_back({0, static_cast<int32_t>(i), ids[i], i + 1 == ids.size()});
  std::map<int, std::vector<float>> out;
  std::vector<float> logits;
  ctx.forward(rows, nullptr, logits);
  int pos = static_cast<int>(ids.size()) - 1;
  for (int i = 0; i < n; ++i) {
    out[pos] = logits;
    const int32_t t = engine::argmax(logits);
    if (tok->is_eog(t)) break;
    const engine::BatchRow r{0, ++pos, t, true};
    ctx.forward(std::span<const engine::BatchRow>(&r, 1), nullptr, logits);
  }
  return out;
}

// The logits the cluster's last stage dumped (--debug-dump-logits) for the first request, by position.
std::map<int, std::vector<float>> dumped_logits(const fs::path& dir) {
  std::map<uint64_t, std::map<int, std::vector<float>>> by_request;
  for (const auto& e : fs::directory_iterator(dir)) {
    uint64_t r = 0;
    int p = 0;
    if (std::sscanf(e.path().filename().c_str(), "r%lu-p%d.f32", &r, &p) != 2) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<float> v(fs::file_size(e.path()) / sizeof(float));
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
    by_request[r][p] = std::move(v);
  }
  return by_request.empty() ? std::map<int, std::vector<float>>{} : by_request.begin()->second;
}

TEST_P(ClusterSplits, GreedyOutputEqualsOneProcess) {
  const auto [workers, split] = GetParam();
  const fs::path dir = temp_dir("split-" + std::to_string(workers) + "-" + split);
  const std::string model = synth_model(dir, 4);
  const std::string expect = single_node_text(model, "the cat sat", 24);
  fs::create_directories(dir / "logits");
  LocalCluster c(model, workers, split, dir, {}, true, {"--debug-dump-logits", (dir / "logits").string()});
  int stages = 1;  // a planned split may keep everything on one node
  if (!split.empty()) stages = static_cast<int>(std::count(split.begin(), split.end(), ',')) + 1;
  ASSERT_TRUE(c.wait_serving(stages)) << c.logs();
  EXPECT_EQ(c.complete("the cat sat", 24), expect) << c.logs();
  // Every sampled position's logits, from the last position of the prompt on, are bit-identical
  // to one process's (f32 activations on the wire).
  const auto want = single_node_logits(model, "the cat sat", 24);
  const auto got = dumped_logits(dir / "logits");
  ASSERT_EQ(got.size(), want.size()) << "positions dumped";
  for (const auto& [pos, v] : want) {
    ASSERT_TRUE(got.count(pos)) << "position " << pos;
    ASSERT_EQ(got.at(pos).size(), v.size());
    EXPECT_EQ(0, std::memcmp(got.at(pos).data(), v.data(), v.size() * sizeof(float))) << "logits differ at position " << pos;
  }
  // a second request reuses the same sequences' slots cleanly
  EXPECT_EQ(c.complete("the cat sat", 24), expect);
  remove_later(dir);
}

INSTANTIATE_TEST_SUITE_P(Nodes, ClusterSplits,
                         ::testing::Values(SplitCase{0, ""}, SplitCase{1, "2,2"}, SplitCase{1, "3,1"},
                                           SplitCase{2, "2,1,1"}, SplitCase{3, "1,1,1,1"}, SplitCase{2, "1,2,1"}, SplitCase{2, ""}),
                         [](const auto& info) {
                           std::string s = std::to_string(info.param.workers + 1) + "nodes_" + info.param.split;
                           for (char& ch : s) if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

TEST(Cluster, Stories260KThreeNodesMatchesLlamaCpp) {
  ZEN_REQUIRE_TESTDATA();
  const fs::path dir = temp_dir("stories");
  const auto json = testdata_dir() / "logits" / "stories260K.gen32.json";
  const std::string model = (testdata_dir() / "models" / "stories260K.gguf").string();
  LocalCluster c(model, 2, "2,2,1", dir);
  ASSERT_TRUE(c.wait_serving(3)) << c.logs();
  EXPECT_EQ(c.complete("Once upon a time", 32), single_node_text(model, "Once upon a time", 32));
  EXPECT_EQ(c.complete("Once upon a time", 32),
            ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw");
  remove_later(dir);
}

TEST(Cluster, WorkerReceivesSliceThenReusesItsCache) {
  const fs::path dir = temp_dir("cache");
  const std::string model = synth_model(dir, 4);
  LocalCluster c(model, 1, "2,2", dir);
  ASSERT_TRUE(c.wait_serving(2)) << c.logs();
  const std::string first = c.complete("hello", 8);
  EXPECT_NE(c.worker(0).read_log().find("slice verified and cached"), std::string::npos) << c.logs();
  c.worker(0).kill();
  c.start_worker(0);
  ASSERT_TRUE(c.wait_serving(2)) << c.logs();
  const std::string log = c.worker(0).read_log();
  EXPECT_NE(log.find("using cached slice"), std::string::npos) << log;
  EXPECT_EQ(log.find("receiving slice"), std::string::npos) << log;
  EXPECT_EQ(c.complete("hello", 8), first);
  remove_later(dir);
}

// A worker with no configured peer finds the coordinator by its authenticated UDP beacons
// (sent only to 127.0.0.1 here).
TEST(Cluster, WorkerFindsCoordinatorByDiscovery) {
  const fs::path dir = temp_dir("discovery");
  const std::string model = synth_model(dir, 4);
  const int base = 30000 + static_cast<int>(::getpid() % 10000) * 2;
  const std::string coord_udp = std::to_string(base), worker_udp = std::to_string(base + 1);
  std::string to_worker = "127.0.0.1:", to_coord = "127.0.0.1:";
  to_worker.append(worker_udp);  // (append, not operator+: GCC 12 warns falsely on literal + string)
  to_coord.append(coord_udp);
  LocalCluster c(model, 0, "2,2", dir,
                 {"--discovery", "--discovery-port", coord_udp, "--discovery-target", to_worker,
                  "--discovery-interval", "200ms"},
                 /*no_discovery=*/false);
  Process worker;
  worker.start({zen_node_binary(), "--role", "worker", "--name", "w1", "--listen", "127.0.0.1:0", "--cluster-secret-file",
                c.secret_file(), "--data-dir", (dir / "w1").string(), "--discovery", "--discovery-port", worker_udp,
                "--discovery-target", to_coord, "--discovery-interval", "200ms", "-t", "1"},
               dir / "w1.log");
  ASSERT_TRUE(c.wait_serving(2)) << c.logs() << worker.read_log();
  EXPECT_NE(worker.read_log().find("discovered coordinator coord"), std::string::npos) << worker.read_log();
  EXPECT_EQ(c.complete("hello", 8), single_node_text(model, "hello", 8));
  worker.kill();
  remove_later(dir);
}

uint64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> kb;
      return kb * 1024;
    }
    std::getline(in, unit);
  }
  return 0;
}

// ~170 MB of F32 weights; every node may use 110 MiB: no node holds the model, three do.
TEST(Cluster, ModelLargerThanEveryNodeRunsAcrossThree) {
  const fs::path dir = temp_dir("memory");
  const std::string model = synth_model(dir, 6, 768, 2048, engine::Mix::F32);
  const uint64_t model_bytes = fs::file_size(model);
  const std::string expect = single_node_text(model, "a b c", 8);
  LocalCluster c(model, 2, "", dir, {"--memory", "110MiB", "--max-sequences", "1"});
  for (int i = 0; i < 2; ++i) {
    c.worker(i).kill();
    c.start_worker(i, {"--memory", "110MiB", "--max-sequences", "1"});
  }
  ASSERT_TRUE(c.wait_serving(3)) << c.logs();
  EXPECT_NE(c.coordinator().read_log().find("does not fit"), std::string::npos) << "the coordinator alone should not fit";
  EXPECT_EQ(c.complete("a b c", 8), expect) << c.logs();
  // Each worker maps only its slice: resident memory is its slice's weights plus a fixed
  // overhead (binary, scratch buffers, KV cache), never the whole model.
  auto file = engine::GgufModelFile::open(model);
  const auto cluster = c.cluster();
  for (int i = 0; i < 2; ++i) {
    const std::string name = "w" + std::to_string(i + 1);
    nlohmann::json stage;
    for (const auto& n : cluster["nodes"])
      if (n["name"] == name) stage = n["stage"];
    ASSERT_TRUE(stage.is_object()) << cluster.dump();
    const int first = stage["first_layer"], end = stage["end_layer"];
    uint64_t slice = 0;
    for (const auto& t : file->gguf().tensors) {
      const bool layer = t.name.rfind("blk.", 0) == 0 && std::atoi(t.name.c_str() + 4) >= first && std::atoi(t.name.c_str() + 4) < end;
      const bool head = stage["head"].get<bool>() && (t.name == "output.weight" || t.name == "output_norm.weight");
      const bool embed = stage["embedding"].get<bool>() && t.name == "token_embd.weight";
      if (layer || head || embed) slice += t.bytes;
    }
    const uint64_t rss = rss_bytes(c.worker(i).pid);
    std::printf("[ memory ] worker %d layers [%d, %d): resident %.1f MiB, slice %.1f MiB, model %.1f MiB\n", i + 1, first,
                end, rss / 1048576.0, slice / 1048576.0, model_bytes / 1048576.0);
    EXPECT_GT(rss, slice / 2);
#ifndef ZEN_SANITIZER_BUILD  // a sanitizer's shadow memory and quarantine are not the program's
    EXPECT_LT(rss, slice + (uint64_t{48} << 20)) << "worker " << i + 1 << " holds more than its slice";
    EXPECT_LT(rss, model_bytes) << "worker " << i + 1;
#endif
  }
  remove_later(dir);
}

}  // namespace
}  // namespace zen::test

namespace zen::test {
namespace {

// `zen plan` prints a plan for nodes that together hold the model, and refuses (exit 2,
// naming the shortfall) when they cannot.
TEST(ZenPlan, FitsOrRefusesWithTheShortfall) {
  const fs::path dir = temp_dir("plan");
  const std::string model = synth_model(dir, 6, 768, 2048, engine::Mix::F32);  // ~144 MiB
  transport::write_cluster_secret_file(dir / "secret", transport::generate_cluster_secret());
  auto run = [&](const std::string& nodes, std::string& out) {
    const std::string cmd = std::string(ZEN_BINARY_DIR) + "/bin/zen plan --role coordinator --model " + model +
                            " --cluster-secret-file " + (dir / "secret").string() + " --data-dir " + (dir / "d").string() +
                            " --memory 110MiB --streams 1 " + nodes + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    out.clear();
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    const int st = ::pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  std::string out;
  EXPECT_EQ(run("--node a=110MiB --node b=110MiB", out), 0) << out;
  EXPECT_NE(out.find("one stream:"), std::string::npos) << out;
  EXPECT_EQ(run("--node a=60MiB", out), 2) << out;
  EXPECT_NE(out.find("does not fit"), std::string::npos) << out;
  EXPECT_NE(out.find("short by"), std::string::npos) << out;
  remove_later(dir);
}

}  // namespace
}  // namespace zen::test
