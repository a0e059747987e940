// Physics checks on a plan and advice: which single change to the cluster helps most.
#include <algorithm>
#include <cstdio>

#include "sim/simulate.h"

namespace zen::sim {

namespace {

// Above the fastest memory system a consumer device ships with (Apple M2 Ultra: 800 GB/s).
constexpr double kMaxPlausibleGbs = 800;
// Far above any CPU's int8/f16 matrix rate.
constexpr double kMaxPlausibleFlops = 50e12;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

bool same_plan(const partition::Plan& a, const partition::Plan& b) {
  if (a.stages.size() != b.stages.size()) return false;
  for (size_t i = 0; i < a.stages.size(); ++i)
    if (a.stages[i].device != b.stages[i].device || a.stages[i].end_layer != b.stages[i].end_layer) return false;
  return true;
}

struct Outcome {
  bool fits = false;
  partition::Plan plan;
  double single = 0;
  double aggregate = 0;
};

Outcome evaluate(const partition::ModelCost& m, const partition::Cluster& c, const Workload& w) {
  Outcome out;
  const partition::PlanOptions o = plan_options_for(w);
  out.plan = partition::plan(m, c, o);
  out.fits = out.plan.fits;
  if (!out.fits) return out;
  Workload one = w;
  one.requests = 1;
  out.single = simulate(m, c, out.plan.stages, one, o).single_tokens_per_s;
  out.aggregate = w.requests == 1 ? out.single : simulate(m, c, out.plan.stages, w, o).aggregate_tokens_per_s;
  return out;
}

}  // namespace

std::vector<std::string> physics_warnings(const partition::ModelCost& m, const partition::Cluster& c,
                                          const partition::Plan& p, double simulated_tokens_per_s) {
  std::vector<std::string> out;
  for (const auto& d : c.devices) {
    if (d.mem_bw_gbs > kMaxPlausibleGbs)
      out.push_back(d.name + ": " + fmt("%.0f", d.mem_bw_gbs) + " GB/s memory bandwidth is beyond any consumer device (" +
                    fmt("%.0f", kMaxPlausibleGbs) + " GB/s)");
    if (d.flops > kMaxPlausibleFlops)
      out.push_back(d.name + ": " + fmt("%.3g", d.flops) + " FLOP/s is beyond any CPU");
  }
  // No stage can finish a decode step faster than its device streams the stage's weights once.
  double limit = 1e300;
  for (const auto& s : p.stages) {
    const partition::Device& d = c.devices[size_t(s.device)];
    double bytes = 0;
    for (int l = s.first_layer; l < s.end_layer; ++l) bytes += double(m.layers[size_t(l)].weight_bytes);
    if (s.head) bytes += double(m.head_bytes);
    const double floor_s = bytes / (d.mem_bw_gbs * 1e9);
    limit = std::min(limit, 1.0 / floor_s);
    if (s.decode_s < floor_s * (1 - 1e-9))
      out.push_back(d.name + ": a decode step of " + fmt("%.3f", s.decode_s * 1e3) + " ms is faster than streaming " +
                    partition::format_bytes(uint64_t(bytes)) + " at " + fmt("%.0f", d.mem_bw_gbs) + " GB/s (" +
                    fmt("%.3f", floor_s * 1e3) + " ms)");
  }
  if (simulated_tokens_per_s > limit * (1 + 1e-9))
    out.push_back("the predicted " + fmt("%.2f", simulated_tokens_per_s) +
                  " tokens/s beats the weight-streaming limit of the slowest stage (" + fmt("%.2f", limit) + " tokens/s)");
  return out;
}

std::vector<Advice> advise(const partition::ModelCost& m, const partition::Cluster& c, const Workload& w) {
  const Outcome base = evaluate(m, c, w);
  std::vector<Advice> out;
  auto consider = [&](const std::string& change, const partition::Cluster& changed) {
    const Outcome o = evaluate(m, changed, w);
    if (!o.fits) return;
    Advice a;
    a.change = change;
    a.tokens_per_s = o.single;
    a.aggregate_tokens_per_s = o.aggregate;
    a.gain = base.fits ? o.single / base.single - 1 : 0;
    a.plan_changed = !base.fits || !same_plan(base.plan, o.plan);
    out.push_back(a);
  };
  const size_t n = c.devices.size();
  if (!c.links.empty())
    for (size_t a = 0; a < n; ++a)
      for (size_t b = a + 1; b < n; ++b) {
        partition::Cluster x = c;
        x.links[a][b].bandwidth_bytes_s *= 2;
        x.links[b][a].bandwidth_bytes_s *= 2;
        consider("2x bandwidth on link " + c.devices[a].name + "-" + c.devices[b].name, x);
      }
  for (size_t d = 0; d < n; ++d) {
    partition::Cluster x = c;
    x.devices[d].mem_bw_gbs *= 2;
    consider("2x memory bandwidth on " + c.devices[d].name, x);
  }
  for (size_t d = 0; d < n; ++d) {
    partition::Cluster x = c;
    x.devices[d].mem_bytes *= 2;
    consider("2x memory on " + c.devices[d].name, x);
  }
  std::stable_sort(out.begin(), out.end(), [](const Advice& a, const Advice& b) {
    if (a.tokens_per_s != b.tokens_per_s) return a.tokens_per_s > b.tokens_per_s;
    return a.aggregate_tokens_per_s > b.aggregate_tokens_per_s;
  });
  return out;
}

}  // namespace zen::sim
