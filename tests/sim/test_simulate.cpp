// The pipeline simulation against partition's closed-form prediction, batching under load,
// advice and physics checks.
#include <gtest/gtest.h>

#include "sim/report.h"
#include "sim/simulate.h"
#include "sim/topology.h"

namespace zen::sim {
namespace {

Topology shipped(const char* name) { return load_topology(std::string(ZEN_SOURCE_DIR) + "/sim/topologies/" + name); }

TEST(Simulate, SeedScenarioFitsAtAPlausibleSpeed) {
  const Topology t = shipped("seed-70b-wifi.toml");
  const Report r = make_report(t, Workload{4, 128, 64});
  ASSERT_TRUE(r.plan.fits) << r.plan.why_not;
  // 40 GiB of weights streamed at 36..260 GB/s: a few tokens per second, never beyond what the
  // fastest device alone could stream (260 GB/s / 40 GiB = 6 tokens/s).
  EXPECT_GT(r.single.single_tokens_per_s, 0.5);
  EXPECT_LT(r.single.single_tokens_per_s, 6.0);
  EXPECT_GT(r.single.mean_ttft_s, 0.1);
  EXPECT_LT(r.single.mean_ttft_s, 60);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_FALSE(format_text(r).empty());
  const std::string js = format_json(r);
  EXPECT_NE(js.find("\"fits\":true"), std::string::npos);
}

TEST(Simulate, TwoPhones7BNeedsBoth) {
  const Topology t = shipped("two-phones-7b.toml");
  const Report r = make_report(t, Workload{2, 64, 32});
  ASSERT_TRUE(r.plan.fits) << r.plan.why_not;
  EXPECT_EQ(r.plan.stages.size(), 2u);
}

// One request alone: the simulated decode rate and TTFT match the closed-form prediction.
void expect_matches_predict(const Topology& t, const Workload& w) {
  const partition::PlanOptions o = plan_options_for(w);
  const partition::Plan p = partition::plan(t.model, t.cluster, o);
  ASSERT_TRUE(p.fits) << p.why_not;
  const SimResult s = simulate(t.model, t.cluster, p.stages, w, o);
  EXPECT_NEAR(s.single_tokens_per_s / p.prediction.tokens_per_s, 1.0, 0.03) << t.model_name;
  EXPECT_NEAR(s.mean_ttft_s / p.prediction.ttft_s, 1.0, 0.03) << t.model_name;
}

TEST(Simulate, OneRequestEqualsPredict) {
  expect_matches_predict(shipped("seed-70b-wifi.toml"), Workload{1, 128, 64});
  expect_matches_predict(shipped("synthetic-small.toml"), Workload{1, 64, 32});
  // a long prompt goes through in several chunks
  expect_matches_predict(shipped("two-phones-7b.toml"), Workload{1, 1500, 16});
}

TEST(Simulate, MoreRequestsRaiseAggregateOnMemoryBoundStages) {
  const Topology t = shipped("seed-70b-wifi.toml");
  const Workload one{1, 4, 64}, eight{8, 4, 64};
  const partition::Plan p = partition::plan(t.model, t.cluster, plan_options_for(eight));
  ASSERT_TRUE(p.fits);
  const SimResult a = simulate(t.model, t.cluster, p.stages, one, plan_options_for(one));
  const SimResult b = simulate(t.model, t.cluster, p.stages, eight, plan_options_for(eight));
  // Weight streaming dominates: sequences sharing a pass cost little more than one alone.
  EXPECT_GT(b.steady_tokens_per_s, 2.5 * a.steady_tokens_per_s);
  EXPECT_NEAR(a.steady_tokens_per_s / a.single_tokens_per_s, 1.0, 0.05);
  const ResourceUse& busiest = b.resources[size_t(b.busiest)];
  EXPECT_TRUE(busiest.is_stage) << busiest.name;
  EXPECT_GT(busiest.mean_batch, 1.5);
  // ...but each stream is no faster than alone.
  EXPECT_LE(b.single_tokens_per_s, a.single_tokens_per_s * 1.0001);
}

TEST(Simulate, RejectsBadWorkloads) {
  const Topology t = shipped("synthetic-small.toml");
  const partition::Plan p = partition::plan(t.model, t.cluster, plan_options_for(Workload{}));
  EXPECT_THROW(simulate(t.model, t.cluster, p.stages, Workload{0, 1, 1}, {}), std::invalid_argument);
  EXPECT_THROW(simulate(t.model, t.cluster, {}, Workload{}, {}), std::invalid_argument);
}

// Two devices that each hold about half the model, joined by one slow link that every hidden
// state crosses. What helps most must address that link: its bandwidth, or enough memory on one
// device to drop the other and the link with it; doubling either's memory bandwidth helps less.
TEST(Advice, PicksTheSlowLink) {
  Topology t;
  t.model = preset_model("llama-3.2-1b", "q8_0");
  for (const char* n : {"a", "b"}) {
    partition::Device d;
    d.name = n;
    d.mem_bytes = 900ull << 20;
    d.mem_bw_gbs = 50;
    d.flops = 1e12;
    t.cluster.devices.push_back(d);
  }
  const partition::Link slow{0.001, 1e6 / 8, 0};  // 1 Mbit/s: 8 KiB of hidden state takes 66 ms
  t.cluster.links.assign(2, std::vector<partition::Link>(2, slow));
  const Workload w{1, 16, 16};
  const partition::Plan base = partition::plan(t.model, t.cluster, plan_options_for(w));
  ASSERT_TRUE(base.fits) << base.why_not;
  ASSERT_EQ(base.stages.size(), 2u);
  EXPECT_EQ(base.prediction.bottleneck.rfind("link", 0), 0u) << base.prediction.bottleneck;
  const auto advice = advise(t.model, t.cluster, w);
  ASSERT_EQ(advice.size(), 5u);  // the link; memory bandwidth and memory on a and on b
  const Advice& best = advice.front();
  EXPECT_TRUE(best.change == "2x bandwidth on link a-b" || (best.change.rfind("2x memory on", 0) == 0 && best.plan_changed))
      << best.change;
  EXPECT_GT(best.gain, 0.3);
  double link_gain = 0, mem_bw_gain = 0;
  for (const Advice& a : advice) {
    if (a.change == "2x bandwidth on link a-b") link_gain = a.gain;
    if (a.change.rfind("2x memory bandwidth", 0) == 0) mem_bw_gain = std::max(mem_bw_gain, a.gain);
  }
  EXPECT_GT(link_gain, 1.5 * mem_bw_gain);
}

TEST(Advice, PicksTheSlowDeviceMemory) {
  const Topology t = shipped("synthetic-small.toml");
  const auto advice = advise(t.model, t.cluster, Workload{1, 16, 16});
  ASSERT_FALSE(advice.empty());
  for (size_t i = 1; i < advice.size(); ++i) EXPECT_GE(advice[i - 1].tokens_per_s, advice[i].tokens_per_s);
}

TEST(Physics, FlagsImpossibleDevicesAndStages) {
  Topology t = shipped("synthetic-small.toml");
  const partition::PlanOptions o = plan_options_for(Workload{});
  partition::Plan p = partition::plan(t.model, t.cluster, o);
  ASSERT_TRUE(p.fits);
  EXPECT_TRUE(physics_warnings(t.model, t.cluster, p, p.prediction.tokens_per_s).empty());
  // A stage claiming a faster step than streaming its weights allows, and a rate beyond it.
  p.stages[0].decode_s /= 10;
  const auto w = physics_warnings(t.model, t.cluster, p, 1e6);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("faster than streaming"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("beats the weight-streaming limit"), std::string::npos) << w[1];
  t.cluster.devices[1].mem_bw_gbs = 5000;
  EXPECT_NE(physics_warnings(t.model, t.cluster, partition::plan(t.model, t.cluster, o), 0).at(0).find("beyond any"),
            std::string::npos);
}

TEST(Report, DoesNotFitIsFlagged) {
  Topology t = shipped("two-phones-7b.toml");
  t.cluster.devices[1].mem_bytes = 256ull << 20;
  const Report r = make_report(t, Workload{1, 16, 16});
  EXPECT_FALSE(r.plan.fits);
  EXPECT_NE(format_text(r).find("DOES NOT FIT"), std::string::npos);
  EXPECT_NE(format_json(r).find("\"fits\":false"), std::string::npos);
  // only more memory can make it fit: on either phone
  ASSERT_EQ(r.advice.size(), 2u);
  for (const Advice& a : r.advice) {
    EXPECT_EQ(a.change.rfind("2x memory on", 0), 0u) << a.change;
    EXPECT_TRUE(a.plan_changed);
  }
}

}  // namespace
}  // namespace zen::sim
