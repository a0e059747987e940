// The planner: beats the baselines, skips what does not help, honours forced splits, avoids slow
// links, says why when nothing fits, and agrees with brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "partition/partition.h"
#include "tests/partition/fixtures.h"

namespace zen::partition {
namespace {

using namespace fixtures;

bool uses(const Plan& p, int device) {
  for (const Stage& s : p.stages)
    if (s.device == device) return true;
  return false;
}

std::string name(int i) {  // "n" + std::to_string(i) trips GCC 12's -Wrestrict false positive
  std::string s = "n";
  return s += std::to_string(i);
}

// 32 layers of 400 MiB (12.5 GiB of layers) with a 4k-context KV cache.
ModelCost model_32x400() { return uniform_model(32, 400 * kMiB, 8e8, 64 * 1024); }

TEST(PartitionPlanner, BeatsEvenAndMemoryProportionalSplits) {
  const ModelCost m = model_32x400();
  const PlanOptions o = options(2, 1024);
  // Fast devices with little memory, a slow one with a lot: memory-proportional favours the slow one.
  const Cluster mixed = mesh({device("fast", 7 * kGiB, 100, 2e12), device("mid", 8 * kGiB, 40, 1e12),
                              device("slow", 12 * kGiB, 10, 2e11)},
                             Link{0.001, 1.25e8, 0});
  // Equal memory, different speeds: the two baselines coincide.
  const Cluster speeds = mesh({device("slow", 8 * kGiB, 15, 2e11), device("fast", 8 * kGiB, 90, 2e12),
                               device("mid", 8 * kGiB, 45, 1e12)},
                              Link{0.0005, 1.25e8, 0}, 1);
  for (const Cluster* c : {&mixed, &speeds}) {
    const Plan best = plan(m, *c, o);
    const Plan even = plan_even(m, *c, o);
    const Plan memory = plan_memory_proportional(m, *c, o);
    ASSERT_TRUE(best.fits) << best.why_not;
    ASSERT_TRUE(even.fits) << even.why_not;
    ASSERT_TRUE(memory.fits) << memory.why_not;
    EXPECT_LT(best.prediction.token_s, even.prediction.token_s) << describe(best, *c) << describe(even, *c);
    EXPECT_LT(best.prediction.token_s, memory.prediction.token_s) << describe(best, *c) << describe(memory, *c);
    // The prediction a plan carries is the cost model's, not a private estimate.
    EXPECT_DOUBLE_EQ(best.prediction.token_s, predict(m, *c, best.stages, o).token_s);
    std::printf("%s\neven split: %.2f tokens/s, memory-proportional: %.2f tokens/s\n", describe(best, *c).c_str(),
                even.prediction.tokens_per_s, memory.prediction.tokens_per_s);
  }
}

TEST(PartitionPlanner, LeavesOutADeviceThatOnlySlowsThePipeline) {
  const ModelCost m = model_32x400();
  const Cluster c = mesh({device("a", 16 * kGiB, 80, 1e12), device("crawler", 64 * kGiB, 2, 1e10),
                          device("b", 16 * kGiB, 80, 1e12)},
                         Link{0.0005, 1.25e8, 0});
  const Plan p = plan(m, c, options(2, 1024));
  ASSERT_TRUE(p.fits) << p.why_not;
  EXPECT_FALSE(uses(p, 1)) << describe(p, c);
}

TEST(PartitionPlanner, SkipsADeviceTooSmallForOneLayer) {
  const ModelCost m = model_32x400();
  const Cluster c = mesh({device("big", 12 * kGiB, 30, 1e12), device("tiny", 300 * kMiB, 200, 1e13),
                          device("other", 12 * kGiB, 25, 1e12)},
                         Link{0.001, 1.25e8, 0});
  const PlanOptions o = options(2, 1024);
  const Plan p = plan(m, c, o);
  ASSERT_TRUE(p.fits) << p.why_not;
  EXPECT_FALSE(uses(p, 1)) << describe(p, c);
  const Plan even = plan_even(m, c, o);
  EXPECT_FALSE(even.fits);
  EXPECT_NE(even.why_not.find("tiny needs"), std::string::npos) << even.why_not;
  EXPECT_NE(even.why_not.find("short by"), std::string::npos) << even.why_not;
}

TEST(PartitionPlanner, ClusterTooSmallSaysByHowMuch) {
  const ModelCost m = model_32x400();
  const Cluster c = mesh({device("pi", 4 * kGiB, 9, 5e10), device("phone", 6 * kGiB, 30, 2e11)}, Link{0.003, 2e6, 0});
  const PlanOptions o = options(2, 1024);
  const Plan p = plan(m, c, o);
  EXPECT_FALSE(p.fits);
  const uint64_t need = sum_weights(m) + m.embed_bytes + m.head_bytes + sum_kv(m) * 1024 * 2 + o.stage_overhead_bytes;
  const uint64_t have = usable_bytes(c.devices[0], o) + usable_bytes(c.devices[1], o);
  ASSERT_LT(have, need);
  EXPECT_NE(p.why_not.find("needs at least " + format_bytes(need)), std::string::npos) << p.why_not;
  EXPECT_NE(p.why_not.find("short by " + format_bytes(need - have)), std::string::npos) << p.why_not;
  // The closest try names each device that lacks memory.
  EXPECT_NE(p.why_not.find("pi needs"), std::string::npos) << p.why_not;
  EXPECT_NE(p.why_not.find("phone needs"), std::string::npos) << p.why_not;
  EXPECT_NE(describe(p, c).find("DOES NOT FIT"), std::string::npos);
}

TEST(PartitionPlanner, EnoughMemoryInTotalButNoContiguousSplitFits) {
  // Three 1 GiB layers; each device holds one and a half: together enough, but no slice fits twice.
  ModelCost m = uniform_model(3, kGiB, 1e9);
  m.embed_bytes = m.head_bytes = 0;
  PlanOptions o = options(1, 0);
  o.stage_overhead_bytes = 0;
  o.mem_reserve_frac = 0;
  const Cluster c = mesh({device("a", kGiB * 3 / 2, 10, 1e11), device("b", kGiB * 3 / 2, 10, 1e11)}, Link{0.001, 1e8, 0});
  const Plan p = plan(m, c, o);
  EXPECT_FALSE(p.fits);
  EXPECT_NE(p.why_not.find("no split into contiguous layer slices fits"), std::string::npos) << p.why_not;
}

TEST(PartitionPlanner, HonoursForcedSplits) {
  const ModelCost m = model_32x400();
  const Cluster c = mesh({device("a", 16 * kGiB, 20, 1e12), device("b", 16 * kGiB, 60, 1e12),
                          device("c", 16 * kGiB, 40, 1e12)},
                         Link{0.001, 1.25e8, 0});
  PlanOptions o = options(2, 1024);

  o.forced_layers_per_stage = std::vector<int>{5, 10, 17};
  Plan p = plan(m, c, o);
  ASSERT_TRUE(p.fits) << p.why_not;
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(p.stages[0].end_layer - p.stages[0].first_layer, 5);
  EXPECT_EQ(p.stages[1].end_layer - p.stages[1].first_layer, 10);
  EXPECT_EQ(p.stages[2].end_layer - p.stages[2].first_layer, 17);
  EXPECT_EQ(p.stages[2].device, 1) << "the fastest device should take the biggest slice";

  o.forced_layers_per_stage.reset();
  o.forced_order = std::vector<int>{2, 0};
  p = plan(m, c, o);
  ASSERT_TRUE(p.fits) << p.why_not;
  ASSERT_EQ(p.stages.size(), 2u);
  EXPECT_EQ(p.stages[0].device, 2);
  EXPECT_EQ(p.stages[1].device, 0);

  o.forced_order = std::vector<int>{1, 2, 0};
  o.forced_layers_per_stage = std::vector<int>{1, 11, 20};
  p = plan(m, c, o);
  ASSERT_TRUE(p.fits) << p.why_not;
  ASSERT_EQ(p.stages.size(), 3u);
  EXPECT_EQ(p.stages[0].device, 1);
  EXPECT_EQ(p.stages[1].device, 2);
  EXPECT_EQ(p.stages[2].device, 0);
  EXPECT_EQ(p.stages[2].first_layer, 12);
  EXPECT_EQ(plan_even(m, c, o).stages.size(), 3u) << "the baselines follow a forced order too";

  // A forced split that does not fit says which device lacks memory.
  o.forced_order.reset();
  o.forced_layers_per_stage = std::vector<int>{1, 1, 30};
  Cluster small = c;
  for (Device& d : small.devices) d.mem_bytes = 11 * kGiB;
  p = plan(m, small, o);
  EXPECT_FALSE(p.fits);
  EXPECT_NE(p.why_not.find("with the forced layer counts"), std::string::npos) << p.why_not;
  EXPECT_NE(p.why_not.find("short by"), std::string::npos) << p.why_not;

  o.forced_layers_per_stage = std::vector<int>{10, 10};
  EXPECT_THROW(plan(m, c, o), std::invalid_argument) << "counts sum to 20 of 32 layers";
  o.forced_layers_per_stage = std::vector<int>{32, 0};
  EXPECT_THROW(plan(m, c, o), std::invalid_argument);
  o.forced_layers_per_stage = std::vector<int>{8, 8, 8, 8};
  EXPECT_THROW(plan(m, c, o), std::invalid_argument) << "four stages on three devices";
  o.forced_layers_per_stage.reset();
  o.forced_order = std::vector<int>{0, 0};
  EXPECT_THROW(plan(m, c, o), std::invalid_argument);
  o.forced_order = std::vector<int>{0, 1};
  o.forced_layers_per_stage = std::vector<int>{32};
  EXPECT_THROW(plan(m, c, o), std::invalid_argument) << "two devices, one count";
}

// Four identical devices, each holding at most 9 of 32 layers, so every plan uses all four and
// visits them in a ring coordinator -> ... -> coordinator. Two of the six links are slow.
Cluster ring_with_slow(std::pair<int, int> slow1, std::pair<int, int> slow2) {
  Cluster c = mesh({device("A", 4 * kGiB, 30, 1e12), device("B", 4 * kGiB, 30, 1e12), device("C", 4 * kGiB, 30, 1e12),
                    device("D", 4 * kGiB, 30, 1e12)},
                   Link{0.0002, 1.25e9, 0});
  set_link(c, slow1.first, slow1.second, Link{0.05, 1e6, 0});
  set_link(c, slow2.first, slow2.second, Link{0.05, 1e6, 0});
  return c;
}

// Every hop one token makes: coordinator -> first stage -> ... -> last stage -> coordinator.
std::vector<std::pair<int, int>> hops(const Plan& p, const Cluster& c) {
  std::vector<int> visits{c.coordinator};
  for (const Stage& s : p.stages) visits.push_back(s.device);
  visits.push_back(c.coordinator);
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i + 1 < visits.size(); ++i)
    if (visits[i] != visits[i + 1]) out.push_back({visits[i], visits[i + 1]});
  return out;
}

std::vector<int> order_of(const Plan& p) {
  std::vector<int> order;
  for (const Stage& s : p.stages) order.push_back(s.device);
  return order;
}

TEST(PartitionPlanner, SlowLinksChangeTheOrder) {
  const ModelCost m = model_32x400();
  PlanOptions o = options(1, 512);
  for (auto [slow1, slow2] : {std::pair{std::pair{0, 2}, std::pair{1, 3}}, std::pair{std::pair{0, 1}, std::pair{2, 3}}}) {
    Cluster c = ring_with_slow(slow1, slow2);
    c.relay_via_coordinator = false;  // stages send to each other directly: the order matters
    const Plan p = plan(m, c, o);
    ASSERT_TRUE(p.fits) << p.why_not;
    ASSERT_EQ(p.stages.size(), 4u) << describe(p, c);
    // No hop, including the token's way back to the coordinator, crosses a slow link.
    for (auto [from, to] : hops(p, c))
      EXPECT_LT(link_between(c, from, to).latency_s, 0.01) << "hop " << from << "->" << to << "\n" << describe(p, c);
    // The cluster order would cross both slow links in one of the two set-ups; it is never better.
    o.forced_order = std::vector<int>{0, 1, 2, 3};
    EXPECT_LE(p.prediction.token_s, plan(m, c, o).prediction.token_s);
    o.forced_order.reset();
  }
  Cluster a = ring_with_slow({0, 2}, {1, 3}), b = ring_with_slow({0, 1}, {2, 3});
  a.relay_via_coordinator = b.relay_via_coordinator = false;
  EXPECT_NE(order_of(plan(m, a, o)), order_of(plan(m, b, o)));
}

TEST(PartitionPlanner, EqualTokenTimeTiesGoToTheBalancedSplit) {
  // Two identical compute-bound devices on ideal links: any split, even one device alone, gives
  // the same one-stream time, and the balanced split pipelines best.
  const ModelCost m = uniform_model(16, 100 * kMiB, 1e10);
  Cluster c = mesh({device("a", 8 * kGiB, 20, 1e12), device("b", 8 * kGiB, 20, 1e12)}, Link{});
  c.links.clear();
  const PlanOptions o = options(4, 256);
  const Plan p = plan(m, c, o);
  ASSERT_EQ(p.stages.size(), 2u) << describe(p, c);
  // The head costs one more layer's FLOPs on the last stage: 8 + 8 + head or 9 + 7 + head.
  EXPECT_TRUE(p.stages[0].end_layer == 8 || p.stages[0].end_layer == 9) << describe(p, c);
  PlanOptions one = o;
  one.forced_order = std::vector<int>{0};
  EXPECT_GT(p.prediction.aggregate_tokens_per_s, plan(m, c, one).prediction.aggregate_tokens_per_s * 1.5);
}

TEST(PartitionPlanner, LargeClustersUseTheHeuristicAndStillBeatTheBaselines) {
  const ModelCost m = uniform_model(80, 450 * kMiB, 9e8, 160 * 1024);
  std::vector<Device> devices;
  for (int i = 0; i < 12; ++i)
    devices.push_back(device(name(i), (6 + i % 5) * kGiB, 10.0 + 9 * ((i * 7) % 12), 1e12));
  const Cluster c = mesh(devices, Link{0.0005, 1.25e8, 0});
  const PlanOptions o = options(2, 1024);
  const auto t0 = std::chrono::steady_clock::now();
  const Plan p = plan(m, c, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("12 devices x 80 layers (heuristic): %.3f s\n", seconds);
  ASSERT_TRUE(p.fits) << p.why_not;
  const Plan even = plan_even(m, c, o), memory = plan_memory_proportional(m, c, o);
  ASSERT_TRUE(even.fits && memory.fits);
  EXPECT_LT(p.prediction.token_s, even.prediction.token_s);
  EXPECT_LT(p.prediction.token_s, memory.prediction.token_s);
}

TEST(PartitionPlanner, ExactSearchOverEightDevicesIsQuick) {
  const ModelCost m = uniform_model(80, 450 * kMiB, 9e8, 160 * 1024);
  std::vector<Device> devices;
  for (int i = 0; i < 8; ++i) devices.push_back(device(name(i), (8 + i) * kGiB, 10.0 + 11 * i, 1e12));
  const Cluster c = mesh(devices, Link{0.0005, 1.25e8, 0});
  const auto t0 = std::chrono::steady_clock::now();
  const Plan p = plan(m, c, options(2, 1024));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("8 devices x 80 layers (exact): %.3f s\n", seconds);
  ASSERT_TRUE(p.fits) << p.why_not;
  EXPECT_LT(seconds, 20.0);
}

}  // namespace
}  // namespace zen::partition
