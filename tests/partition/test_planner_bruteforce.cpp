// Property test: on small random clusters the planner's dynamic programs find exactly the best
// one-stream token time that trying every ordered subset of devices and every split finds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

#include "partition/partition.h"
#include "tests/partition/fixtures.h"

namespace zen::partition {
namespace {

using namespace fixtures;

struct BruteForce {
  const ModelCost& m;
  const Cluster& c;
  const PlanOptions& o;
  std::optional<std::vector<int>> forced_order;   // these devices in this order, all used
  std::optional<std::vector<int>> forced_counts;  // these slice sizes
  double best = std::numeric_limits<double>::infinity();
  int evaluated = 0;

  void run() {
    std::vector<int> devices, counts;
    std::vector<bool> used(c.devices.size(), false);
    extend(devices, counts, used, 0);
  }

  void extend(std::vector<int>& devices, std::vector<int>& counts, std::vector<bool>& used, int placed) {
    const int n_layers = static_cast<int>(m.layers.size());
    if (placed == n_layers) {
      if (forced_order && devices.size() != forced_order->size()) return;
      if (forced_counts && counts.size() != forced_counts->size()) return;
      ++evaluated;
      const std::vector<Stage> stages = make_stages(m, c, devices, counts, o);
      if (memory_shortfall(c, stages, o).empty()) best = std::min(best, predict(m, c, stages, o).token_s);
      return;
    }
    const size_t k = devices.size();
    for (int d = 0; d < static_cast<int>(c.devices.size()); ++d) {
      if (used[static_cast<size_t>(d)]) continue;
      if (forced_order && (k >= forced_order->size() || (*forced_order)[k] != d)) continue;
      for (int n = 1; placed + n <= n_layers; ++n) {
        if (forced_counts && (k >= forced_counts->size() || (*forced_counts)[k] != n)) continue;
        devices.push_back(d);
        counts.push_back(n);
        used[static_cast<size_t>(d)] = true;
        extend(devices, counts, used, placed + n);
        used[static_cast<size_t>(d)] = false;
        devices.pop_back();
        counts.pop_back();
      }
    }
  }
};

struct RandomCase {
  ModelCost model;
  Cluster cluster;
  PlanOptions options;
};

RandomCase random_case(std::mt19937& rng) {
  std::uniform_int_distribution<int> n_dev(1, 4), n_layers(1, 7);
  std::uniform_real_distribution<double> unit(0, 1);
  auto between = [&](double lo, double hi) { return lo + (hi - lo) * unit(rng); };
  RandomCase r;
  const int L = n_layers(rng), D = n_dev(rng);
  uint64_t total = 0;
  for (int i = 0; i < L; ++i) {
    const LayerCost l{static_cast<uint64_t>(between(1, 100) * kMiB), between(1e6, 1e9),
                      static_cast<uint64_t>(between(0, 4096))};
    total += l.weight_bytes + l.kv_bytes_per_token * 64 * 2;
    r.model.layers.push_back(l);
  }
  r.model.embed_bytes = static_cast<uint64_t>(between(0, 50) * kMiB);
  r.model.head_bytes = static_cast<uint64_t>(between(0, 80) * kMiB);
  r.model.head_flops_per_token = between(0, 1e9);
  r.model.hidden_bytes_per_token = static_cast<uint64_t>(between(256, 65536));
  r.model.tied_embeddings = unit(rng) < 0.3;
  for (int d = 0; d < D; ++d) {
    // Some clusters hold the model easily, some barely, some not at all.
    const double mem = between(0.2, 2.5) * static_cast<double>(total + r.model.embed_bytes + r.model.head_bytes) / D;
    r.cluster.devices.push_back(device(std::string("d").append(std::to_string(d)), static_cast<uint64_t>(mem), between(1, 100),
                                       between(1e9, 1e11), unit(rng) < 0.5 ? 0 : between(0, 1e-3)));
  }
  if (unit(rng) < 0.8) {
    r.cluster.links.assign(static_cast<size_t>(D), std::vector<Link>(static_cast<size_t>(D)));
    for (int a = 0; a < D; ++a)
      for (int b = a + 1; b < D; ++b)
        set_link(r.cluster, a, b, Link{between(0, 0.005), between(1e6, 1e9), unit(rng) < 0.2 ? between(0, 0.05) : 0});
  }
  r.cluster.coordinator = std::uniform_int_distribution<int>(0, D - 1)(rng);
  r.options = options(2, 64);
  r.options.stage_overhead_bytes = kMiB;
  r.options.prompt_tokens = static_cast<int>(between(1, 300));
  return r;
}

void expect_same_best(const Plan& p, const BruteForce& brute, const char* what, int trial) {
  if (!std::isfinite(brute.best)) {
    EXPECT_FALSE(p.fits) << what << " trial " << trial << ": brute force found nothing that fits";
    EXPECT_FALSE(p.why_not.empty());
    return;
  }
  ASSERT_TRUE(p.fits) << what << " trial " << trial << ": " << p.why_not;
  EXPECT_NEAR(p.prediction.token_s, brute.best, 1e-9 * brute.best) << what << " trial " << trial;
}

TEST(PartitionPlanner, DynamicProgramMatchesBruteForce) {
  std::mt19937 rng(20240613);
  int feasible = 0, infeasible = 0, evaluated = 0;
  for (int trial = 0; trial < 200; ++trial) {
    RandomCase r = random_case(rng);
    BruteForce brute{r.model, r.cluster, r.options, std::nullopt, std::nullopt};
    brute.run();
    evaluated += brute.evaluated;
    (std::isfinite(brute.best) ? feasible : infeasible)++;
    const Plan p = plan(r.model, r.cluster, r.options);
    expect_same_best(p, brute, "exact", trial);
    if (p.fits) {
      EXPECT_TRUE(memory_shortfall(r.cluster, p.stages, r.options).empty());
    }

    // The heuristic search never claims better than the optimum, and is often optimal.
    PlanOptions heuristic = r.options;
    heuristic.exact_max_devices = 0;
    const Plan h = plan(r.model, r.cluster, heuristic);
    if (h.fits) {
      EXPECT_GE(h.prediction.token_s, brute.best * (1 - 1e-9)) << "trial " << trial;
    }

    // A random forced order (a subset in a random order), then random forced counts for it.
    const int D = static_cast<int>(r.cluster.devices.size()), L = static_cast<int>(r.model.layers.size());
    std::vector<int> order(static_cast<size_t>(D));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(static_cast<size_t>(std::uniform_int_distribution<int>(1, std::min(D, L))(rng)));
    PlanOptions forced = r.options;
    forced.forced_order = order;
    BruteForce in_order{r.model, r.cluster, forced, order, std::nullopt};
    in_order.run();
    expect_same_best(plan(r.model, r.cluster, forced), in_order, "forced order", trial);

    std::vector<int> counts(order.size(), 1);
    for (int extra = L - static_cast<int>(order.size()); extra > 0; --extra)
      ++counts[std::uniform_int_distribution<size_t>(0, counts.size() - 1)(rng)];
    forced.forced_order.reset();
    forced.forced_layers_per_stage = counts;
    BruteForce in_counts{r.model, r.cluster, forced, std::nullopt, counts};
    in_counts.run();
    expect_same_best(plan(r.model, r.cluster, forced), in_counts, "forced counts", trial);
  }
  std::printf("%d feasible and %d infeasible random clusters, %d splits tried by brute force\n", feasible, infeasible,
              evaluated);
  EXPECT_GT(feasible, 40);
  EXPECT_GT(infeasible, 10);
}

}  // namespace
}  // namespace zen::partition
