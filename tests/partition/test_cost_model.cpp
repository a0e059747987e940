// The cost model: stage and hop times, batching, time to first token, physics limits, bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "partition/partition.h"
#include "tests/partition/fixtures.h"

namespace zen::partition {
namespace {

using namespace fixtures;

double rel(double expected) { return 1e-12 * std::abs(expected); }

// Random layers, so that slices of different layers really differ.
ModelCost random_model(std::mt19937& rng, int n_layers, double flops_scale) {
  std::uniform_int_distribution<uint64_t> bytes(1 * kMiB, 5 * kMiB), kv(100, 1000);
  std::uniform_real_distribution<double> flops(1e6, 1e8);
  ModelCost m;
  for (int i = 0; i < n_layers; ++i) m.layers.push_back(LayerCost{bytes(rng), flops(rng) * flops_scale, kv(rng)});
  m.embed_bytes = bytes(rng);
  m.head_bytes = bytes(rng);
  m.head_flops_per_token = flops(rng) * flops_scale;
  m.hidden_bytes_per_token = 2048;
  return m;
}

TEST(PartitionCost, SingleDeviceEqualsSumOfAllLayers) {
  std::mt19937 rng(7);
  for (double flops_scale : {0.01, 1000.0}) {  // memory-bound, then compute-bound
    const ModelCost m = random_model(rng, 12, flops_scale);
    const Cluster c = mesh({device("solo", 1 * kGiB, 20, 5e10, 1e-4)}, Link{0.001, 1e8, 0});
    PlanOptions o = options(2, 256);
    o.prompt_tokens = 64;
    o.gen_tokens = 64;
    const Plan p = plan(m, c, o);
    ASSERT_TRUE(p.fits) << p.why_not;
    ASSERT_EQ(p.stages.size(), 1u);
    const Stage& s = p.stages[0];
    EXPECT_EQ(s.first_layer, 0);
    EXPECT_EQ(s.end_layer, 12);
    EXPECT_TRUE(s.embed);
    EXPECT_TRUE(s.head);
    // Decode reads every weight and the head once, and the KV cache at the average context 64 + 64/2.
    const double bytes = static_cast<double>(sum_weights(m) + m.head_bytes) + sum_kv(m) * 96.0;
    const double flops = sum_flops(m) + m.head_flops_per_token;
    const double expected = std::max(bytes / 20e9, flops / 5e10) + 1e-4;
    EXPECT_NEAR(s.decode_s, expected, rel(expected));
    EXPECT_NEAR(p.prediction.token_s, expected, rel(expected)) << "one device: no hops at all";
    EXPECT_EQ(p.prediction.bottleneck, flops_scale > 1 ? "compute on solo" : "memory bandwidth on solo");
    EXPECT_EQ(s.mem_bytes, sum_weights(m) + m.embed_bytes + m.head_bytes + sum_kv(m) * 256 * 2 + o.stage_overhead_bytes);
  }
}

TEST(PartitionCost, TiedEmbeddingsCountOnceOnOneStage) {
  ModelCost m = uniform_model(4, 10 * kMiB, 1e7);
  m.head_bytes = m.embed_bytes;
  const Cluster c = mesh({device("a", kGiB, 10, 1e10), device("b", kGiB, 10, 1e10)}, Link{0, 1e9, 0});
  PlanOptions o = options(1, 0);
  const uint64_t untied = make_stage(m, c, 0, 0, 4, o).mem_bytes;
  m.tied_embeddings = true;
  EXPECT_EQ(make_stage(m, c, 0, 0, 4, o).mem_bytes, untied - m.embed_bytes);
  // Split over two devices, each holds its own copy.
  EXPECT_EQ(make_stage(m, c, 0, 0, 2, o).mem_bytes, 20 * kMiB + m.embed_bytes + o.stage_overhead_bytes);
  EXPECT_EQ(make_stage(m, c, 1, 2, 4, o).mem_bytes, 20 * kMiB + m.head_bytes + o.stage_overhead_bytes);
}

TEST(PartitionCost, PhysicsNoDeviceDecodesFasterThanBandwidthOverBytes) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> bw(0.5, 400), rate(1e9, 1e13), scale(0.01, 100);
  std::uniform_int_distribution<int> layers(1, 40), streams(1, 8);
  for (int trial = 0; trial < 300; ++trial) {
    const ModelCost m = random_model(rng, layers(rng), scale(rng));
    const double gbs = bw(rng);
    const Cluster one = mesh({device("d", 64 * kGiB, gbs, rate(rng))}, Link{});
    PlanOptions o = options(streams(rng), 512);
    const Prediction p = plan(m, one, o).prediction;
    const double limit = gbs * 1e9 / static_cast<double>(sum_weights(m) + m.head_bytes);
    EXPECT_LE(p.tokens_per_s, limit * (1 + 1e-12));
    EXPECT_LE(p.aggregate_tokens_per_s, o.n_streams * limit * (1 + 1e-12));
    // Batching never makes one stream slower, nor n streams more than n times faster.
    EXPECT_GE(p.aggregate_tokens_per_s, p.tokens_per_s * (1 - 1e-12));
    EXPECT_LE(p.aggregate_tokens_per_s, o.n_streams * p.tokens_per_s * (1 + 1e-12));

    // Three devices in a pipeline: one token still has to stream every stage's weights.
    if (m.layers.size() < 3) continue;
    const Cluster three = mesh({device("a", 64 * kGiB, bw(rng), rate(rng)), device("b", 64 * kGiB, bw(rng), rate(rng)),
                                device("c", 64 * kGiB, bw(rng), rate(rng))},
                               Link{1e-4, 1e9, 0});
    const int n = static_cast<int>(m.layers.size());
    const std::vector<Stage> st = make_stages(m, three, {0, 1, 2}, {1, n / 2, n - 1 - n / 2}, o);
    double stream_s = 0;
    for (const Stage& s : st) {
      uint64_t bytes = s.head ? m.head_bytes : 0;
      for (int l = s.first_layer; l < s.end_layer; ++l) bytes += m.layers[static_cast<size_t>(l)].weight_bytes;
      stream_s += static_cast<double>(bytes) / (three.devices[static_cast<size_t>(s.device)].mem_bw_gbs * 1e9);
    }
    EXPECT_LE(predict(m, three, st, o).tokens_per_s, (1 + 1e-12) / stream_s);
  }
}

TEST(PartitionCost, HopsAddLatencyAndBytesOverBandwidth) {
  const ModelCost m = uniform_model(8, 50 * kMiB, 1e8);
  const Link link{0.002, 12.5e6, 0};  // 2 ms, 100 Mbit/s
  const Cluster c = mesh({device("a", 4 * kGiB, 20, 1e11), device("b", 4 * kGiB, 10, 1e11), device("coord", kGiB, 5, 1e10)},
                         link);
  const PlanOptions o = options();
  const std::vector<Stage> st = make_stages(m, c, {0, 1}, {3, 5}, o);
  const double hidden_hop = 0.002 + (16384.0 + kMessageOverheadBytes) / 12.5e6;
  const double token_hop = 0.002 + static_cast<double>(kTokenBytes + kMessageOverheadBytes) / 12.5e6;

  Cluster first_is_coordinator = c;
  first_is_coordinator.coordinator = 0;
  double expected = st[0].decode_s + st[1].decode_s + hidden_hop + token_hop;
  EXPECT_NEAR(predict(m, first_is_coordinator, st, o).token_s, expected, rel(expected));

  // A coordinator outside the pipeline adds the hop that brings each token to the first stage.
  Cluster outside = c;
  outside.coordinator = 2;
  outside.relay_via_coordinator = false;
  expected += token_hop;
  EXPECT_NEAR(predict(m, outside, st, o).token_s, expected, rel(expected));
  // Relayed through it (how zen-node routes), the hidden states cross two links: a -> coord -> b.
  outside.relay_via_coordinator = true;
  expected += hidden_hop;
  EXPECT_NEAR(predict(m, outside, st, o).token_s, expected, rel(expected));
  EXPECT_EQ(hidden_route(outside, 0, 1).size(), 2u);
  EXPECT_EQ(hidden_route(first_is_coordinator, 0, 1).size(), 1u);  // the coordinator is a stage

  // A lossy link is slower, and the sampled token's return is named when the link dominates.
  Cluster lossy = first_is_coordinator;
  set_link(lossy, 0, 1, Link{0.2, 12.5e6, 0.01});
  const Prediction p = predict(m, lossy, st, o);
  EXPECT_GT(p.token_s, predict(m, first_is_coordinator, st, o).token_s + 0.4);
  EXPECT_EQ(p.bottleneck.rfind("link ", 0), 0u) << p.bottleneck;
  EXPECT_GT(message_s(Link{0.01, 1e6, 0.05}, 100000), message_s(Link{0.01, 1e6, 0}, 100000));
  EXPECT_EQ(message_s(link_between(Cluster{{device("x", 1, 1, 1)}, {}, 0}, 0, 0), 1 << 20), 0.0);
}

TEST(PartitionCost, WaitingSequencesShareOnePassOverTheWeights) {
  // Memory-bound stages on ideal links: 4 streams in one batch cost what one stream costs.
  const ModelCost m = uniform_model(8, 100 * kMiB, 1e6);
  Cluster c = mesh({device("a", 8 * kGiB, 10, 1e12), device("b", 8 * kGiB, 10, 1e12)}, Link{});
  c.links.clear();
  const PlanOptions o = options(4, 128);
  const Prediction two = predict(m, c, make_stages(m, c, {0, 1}, {4, 4}, o), o);
  EXPECT_NEAR(two.aggregate_tokens_per_s, 4 * two.tokens_per_s, 1e-9 * two.tokens_per_s);

  // Compute-bound: a batch of b costs b times one token, so more streams do not add throughput.
  const ModelCost heavy = uniform_model(8, 1 * kMiB, 1e10);
  const Prediction one = predict(heavy, c, make_stages(heavy, c, {0}, {8}, o), o);
  EXPECT_NEAR(one.aggregate_tokens_per_s, one.tokens_per_s, 1e-9 * one.tokens_per_s);

  // A fixed step overhead is paid once per batch, so batching recovers it.
  Cluster slow_step = c;
  slow_step.devices[0].overhead_s = 0.01;
  const Prediction with_overhead = predict(heavy, slow_step, make_stages(heavy, slow_step, {0}, {8}, o), o);
  EXPECT_GT(with_overhead.aggregate_tokens_per_s, with_overhead.tokens_per_s * 1.01);
  EXPECT_GT(with_overhead.stream_batch, 1);
}

TEST(PartitionCost, TimeToFirstTokenPipelinesPromptChunks) {
  // Two compute-bound stages of 4 layers at 1e6 FLOPs per token on 1e9 FLOP/s, ideal links:
  // a chunk of 250 tokens takes 1 s per stage (plus the head's 1e6 FLOPs once on the last).
  const ModelCost m = uniform_model(8, 1 * kMiB, 1e6);
  Cluster c = mesh({device("a", 8 * kGiB, 100, 1e9), device("b", 8 * kGiB, 100, 1e9)}, Link{});
  c.links.clear();
  PlanOptions o = options(1, 1100);
  o.prompt_tokens = 1000;
  o.prefill_chunk = 250;
  const std::vector<Stage> st = make_stages(m, c, {0, 1}, {4, 4}, o);
  const double head = 1e6 / 1e9;
  // The first chunk crosses both stages; the three others follow one stage behind each other.
  const double expected = 1.0 + (1.0 + head) + 3 * (1.0 + head);
  EXPECT_NEAR(predict(m, c, st, o).ttft_s, expected, 1e-9);
  EXPECT_NEAR(st[0].prefill_s_per_token, 4 * 1.0 / 1000, 1e-12);

  // One chunk through one stage: the whole prompt's FLOPs on one device.
  o.prefill_chunk = 4096;
  const std::vector<Stage> solo = make_stages(m, c, {0}, {8}, o);
  const Prediction p = predict(m, c, solo, o);
  EXPECT_NEAR(p.ttft_s, 1000 * 8e6 / 1e9 + head, 1e-9);
  EXPECT_NEAR(p.prefill_tokens_per_s, 1000 / p.ttft_s, 1e-9);
}

TEST(PartitionCost, RejectsMalformedInput) {
  const ModelCost m = uniform_model(8, 10 * kMiB, 1e6);
  const Cluster c = mesh({device("a", kGiB, 10, 1e10), device("b", kGiB, 10, 1e10)}, Link{0.001, 1e8, 0});
  const PlanOptions o = options();
  auto stage = [](int d, int first, int end) {
    Stage s;
    s.device = d;
    s.first_layer = first;
    s.end_layer = end;
    return s;
  };
  EXPECT_THROW(predict(m, c, {}, o), std::invalid_argument);
  EXPECT_THROW(predict(m, c, {stage(0, 0, 3), stage(1, 4, 8)}, o), std::invalid_argument);  // gap
  EXPECT_THROW(predict(m, c, {stage(0, 0, 3), stage(0, 3, 8)}, o), std::invalid_argument);  // device twice
  EXPECT_THROW(predict(m, c, {stage(0, 0, 3), stage(2, 3, 8)}, o), std::invalid_argument);  // no device 2
  EXPECT_THROW(predict(m, c, {stage(0, 0, 7)}, o), std::invalid_argument);                  // layer 7 missing
  EXPECT_NO_THROW(predict(m, c, {stage(1, 0, 5), stage(0, 5, 8)}, o));

  Cluster bad = c;
  bad.links.pop_back();
  EXPECT_THROW(plan(m, bad, o), std::invalid_argument);
  bad = c;
  bad.coordinator = 2;
  EXPECT_THROW(plan(m, bad, o), std::invalid_argument);
  bad = c;
  bad.links[0][1].bandwidth_bytes_s = 0;
  EXPECT_THROW(plan(m, bad, o), std::invalid_argument);
  bad = c;
  bad.devices[1].mem_bw_gbs = 0;
  EXPECT_THROW(plan(m, bad, o), std::invalid_argument);
  ModelCost empty = m;
  empty.layers.clear();
  EXPECT_THROW(plan(empty, c, o), std::invalid_argument);
  PlanOptions huge = o;
  huge.kv_tokens = UINT64_MAX / 2;
  ModelCost with_kv = m;
  with_kv.layers[0].kv_bytes_per_token = 1024;
  EXPECT_THROW(plan(with_kv, c, huge), std::invalid_argument) << "KV bytes overflow 64 bits";
  EXPECT_THROW(make_stage(m, c, 0, 5, 5, o), std::invalid_argument);
  EXPECT_THROW(stage_step_s(m, c, stage(0, 0, 8), 0, o), std::invalid_argument);
}

TEST(PartitionCost, DescribeShowsStagesAndPrediction) {
  const ModelCost m = uniform_model(8, 10 * kMiB, 1e6);
  const Cluster c = mesh({device("laptop", kGiB, 10, 1e10), device("phone", kGiB, 5, 1e10)}, Link{0.001, 1e8, 0});
  const PlanOptions o = options();
  Plan p = plan_even(m, c, o);
  const std::string text = describe(p, c);
  EXPECT_NE(text.find("laptop"), std::string::npos) << text;
  EXPECT_NE(text.find("phone"), std::string::npos) << text;
  EXPECT_NE(text.find("[0, 4) embed"), std::string::npos) << text;
  EXPECT_NE(text.find("[4, 8) head"), std::string::npos) << text;
  EXPECT_NE(text.find("tokens/s"), std::string::npos) << text;
  EXPECT_EQ(text.find("DOES NOT FIT"), std::string::npos) << text;
  p.fits = false;
  p.why_not = "phone is short by 1 B";
  EXPECT_NE(describe(p, c).find("DOES NOT FIT: phone is short by 1 B"), std::string::npos);
  EXPECT_EQ(format_bytes(812), "812 B");
  EXPECT_EQ(format_bytes(3 * kMiB + kMiB / 2), "3.5 MiB");
  EXPECT_EQ(format_bytes(12 * kGiB), "12.00 GiB");
}

}  // namespace
}  // namespace zen::partition
