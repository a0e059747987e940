// The harness: prediction for the plan, zen-node processes with shaped links, the workload over
// HTTP, measured beside predicted. Processes and HTTP live in harness_run.cpp.
#include "sim/harness.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/forward.h"
#include "engine/model.h"
#include "sim/harness_run.h"

namespace zen::sim {

partition::Cluster measured_cluster(const Topology& t, double kernel_gbps, double flops) {
  partition::Cluster c = t.cluster;
  for (partition::Device& d : c.devices) {
    d.mem_bw_gbs = kernel_gbps;
    d.flops = flops;
  }
  return c;
}

bool netem_available(std::string& why_not) {
  if (::geteuid() != 0) {
    why_not = "not root";
    return false;
  }
  const std::string ns = "zen-probe-" + std::to_string(::getpid());
  const std::string log = "/tmp/" + ns + ".log";
  const std::string cmd = "{ ip netns add " + ns + " && ip -n " + ns + " link add zp0 type veth peer name zp1 && ip netns exec " +
                          ns + " tc qdisc add dev zp0 root netem delay 1ms rate 100mbit; } >" + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::system(("ip netns del " + ns + " >/dev/null 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(log.c_str());
  if (rc == 0) return true;
  why_not = ss.str();
  while (!why_not.empty() && (why_not.back() == '\n' || why_not.back() == ' ')) why_not.pop_back();
  if (why_not.empty()) why_not = "exit status " + std::to_string(rc);
  return false;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

DeviceSpeed calibrate_device(const Topology& t, int threads, int prompt_tokens, int gen_tokens) {
  auto model = engine::Model::load(t.model_path.string());
  engine::ContextParams cp;
  cp.n_threads = threads;
  cp.n_ctx = prompt_tokens + gen_tokens + 8;
  cp.max_seqs = 1;
  cp.max_batch = std::max(1, prompt_tokens);
  engine::Context ctx(model, cp);
  const int64_t n_vocab = ctx.hp().n_vocab;
  std::vector<float> out;
  DeviceSpeed d;
  d.prefill_s = d.step_s = 1e300;
  for (int rep = 0; rep < 3; ++rep) {  // the fastest of three: noise only ever adds time
    std::vector<engine::BatchRow> rows;
    for (int i = 0; i < prompt_tokens; ++i) rows.push_back({0, i, static_cast<int32_t>((i * 37 + 11) % n_vocab), i + 1 == prompt_tokens});
    ctx.clear_all();
    auto t0 = std::chrono::steady_clock::now();
    ctx.forward(rows, nullptr, out);
    d.prefill_s = std::min(d.prefill_s, seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < gen_tokens; ++i) {
      engine::BatchRow r{0, prompt_tokens + i, static_cast<int32_t>((i * 53 + 5) % n_vocab), true};
      ctx.forward(std::span<const engine::BatchRow>(&r, 1), nullptr, out);
    }
    d.step_s = std::min(d.step_s, seconds_since(t0) / gen_tokens);
  }
  // Solve the cost model for the device: a decode step streams every weight and the KV cache at
  // half the generated context (memory bound at batch 1); a prompt pass is compute bound.
  const double overhead = t.cluster.devices[size_t(t.cluster.coordinator)].overhead_s;
  double bytes = static_cast<double>(t.model.head_bytes), flops = t.model.head_flops_per_token, kv = 0;
  for (const auto& l : t.model.layers) {
    bytes += static_cast<double>(l.weight_bytes);
    flops += l.flops_per_token;
    kv += static_cast<double>(l.kv_bytes_per_token);
  }
  bytes += kv * (prompt_tokens + 0.5 * gen_tokens);
  d.mem_bw_gbs = bytes / std::max(1e-6, d.step_s - overhead) / 1e9;
  d.flops = prompt_tokens * (flops - t.model.head_flops_per_token) / std::max(1e-6, d.prefill_s - overhead);
  return d;
}

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

HarnessResult run_harness(const Topology& t, const HarnessOptions& o) {
  if (t.model_path.empty()) throw std::runtime_error("zen sim --run needs a real model: [model] path or synth, not a preset");
  if (t.cluster.devices.size() > 9) throw std::runtime_error("zen sim --run runs at most 9 nodes on one machine");
  const Workload& w = o.workload;
  HarnessResult r;

  // Shaping: veth + netem where the kernel has it, else the transport's own shaper.
  std::string why;
  const bool netem = netem_available(why);
  if (o.shaping == "netem") throw std::runtime_error(netem ? "the network-namespace runner is not built yet: use --shaping transport"
                                                          : "tc netem is not available here: " + why);
  r.shaping = std::string("in the transport (zen-node --bench-shape on loopback); ") +
              (netem ? "netem works here but the namespace runner is not built yet" : "tc netem unavailable: " + why);

  // The prediction: this machine's speeds for every device, the topology's links, the planner's
  // split over the devices in file order (coordinator first), the simulator for the numbers.
  const node::Capabilities caps = node::measure_capabilities(o.threads, 0);
  const DeviceSpeed speed = calibrate_device(t, o.threads, w.prompt_tokens, w.gen_tokens);
  char line[400];
  std::snprintf(line, sizeof line,
                "capabilities %s\nthis model on one node: %.2f ms per token, %.1f ms for %d prompt tokens -> "
                "%.1f GB/s, %.1f GFLOP/s (used for every device)",
                node::describe(caps).c_str(), speed.step_s * 1e3, speed.prefill_s * 1e3, w.prompt_tokens,
                speed.mem_bw_gbs, speed.flops / 1e9);
  r.devices = line;
  const partition::Cluster cluster = measured_cluster(t, speed.mem_bw_gbs, speed.flops);
  partition::PlanOptions opts = plan_options_for(w);
  std::vector<int> order = {cluster.coordinator};
  for (int d = 0; d < static_cast<int>(cluster.devices.size()); ++d)
    if (d != cluster.coordinator) order.push_back(d);
  opts.forced_order = order;
  const partition::Plan plan = partition::plan(t.model, cluster, opts);
  if (!plan.fits) throw std::runtime_error("the model does not fit the topology: " + plan.why_not);
  r.plan = partition::describe(plan, cluster);
  const SimResult one = simulate(t.model, cluster, plan.stages, Workload{1, w.prompt_tokens, w.gen_tokens}, opts);
  const SimResult many = simulate(t.model, cluster, plan.stages, w, opts);
  r.predicted = {one.mean_ttft_s, one.single_tokens_per_s, many.aggregate_tokens_per_s};

  // The real cluster, forced onto the same split.
  RunningCluster rc(t, plan, o);
  std::vector<int32_t> prompt;
  for (int i = 0; i < w.prompt_tokens; ++i) prompt.push_back(3 + (i * 7919) % (rc.n_vocab() - 3));
  rc.complete(prompt, 8);  // warm-up: page in the weights, grow the buffers
  std::vector<double> ttft, single;
  for (int i = 0; i < o.repeats; ++i) ttft.push_back(rc.complete(prompt, 1).seconds);
  r.measured.ttft_s = median(ttft);
  for (int i = 0; i < o.repeats; ++i) {
    const Completion c = rc.complete(prompt, w.gen_tokens);
    r.generated_single = c.tokens;
    if (c.tokens > 1) single.push_back((c.tokens - 1) / (c.seconds - r.measured.ttft_s));
  }
  r.measured.single_tokens_per_s = median(single);
  const auto [total, seconds] = rc.complete_concurrently(prompt, w.gen_tokens, w.requests);
  r.generated_total = total;
  r.measured.aggregate_tokens_per_s = total / seconds;
  return r;
}

std::string format_harness(const HarnessResult& r, const Workload& w) {
  char buf[512];
  std::string s = "links shaped " + r.shaping + "\n" + r.devices + "\nplan:\n" + r.plan + "\n";
  auto row = [&](const std::string& what, double p, double m) {
    std::snprintf(buf, sizeof buf, "| %-34s | %10.3f | %10.3f | %+6.1f %% |\n", what.c_str(), p, m, 100.0 * (m / p - 1));
    s += buf;
  };
  s += "| what | predicted | measured | measured vs predicted |\n|---|---|---|---|\n";
  row("TTFT, " + std::to_string(w.prompt_tokens) + " prompt tokens (ms)", r.predicted.ttft_s * 1e3, r.measured.ttft_s * 1e3);
  row("one stream, tokens/s (" + std::to_string(r.generated_single) + " tokens)", r.predicted.single_tokens_per_s,
      r.measured.single_tokens_per_s);
  row(std::to_string(w.requests) + " streams, tokens/s in total", r.predicted.aggregate_tokens_per_s,
      r.measured.aggregate_tokens_per_s);
  return s;
}

}  // namespace zen::sim
