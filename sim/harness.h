// sim/: the harness behind `zen sim --run`: runs a small topology for real on this machine (one
// zen-node process per device, links shaped as the file says), drives a workload through the
// coordinator's HTTP API and sets what it measures beside what the planner and the simulator
// predict for the same plan, with every device's speed measured on this machine.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sim/simulate.h"
#include "sim/topology.h"

namespace zen::sim {

struct HarnessOptions {
  std::filesystem::path zen_node;  // the zen-node binary
  std::filesystem::path work_dir;  // keys, logs, data folders; "" -> a fresh temp folder
  int threads = 1;                 // compute threads per node (each simulated device is this machine)
  Workload workload{4, 64, 64};    // requests = streams of the aggregate test
  int repeats = 3;                 // TTFT and single-stream runs; the median counts
  std::string shaping = "auto";    // auto | netem | transport
  bool keep = false;               // leave work_dir behind
};

struct HarnessNumbers {
  double ttft_s = 0;                  // prompt of P tokens, one request alone
  double single_tokens_per_s = 0;     // one stream, after its first token
  double aggregate_tokens_per_s = 0;  // N streams started together: every token / wall time
};

struct HarnessResult {
  std::string shaping;     // how the links were shaped, and why (netem refused, ...)
  std::string plan;        // partition::describe of the plan both sides ran
  std::string devices;     // what this machine measured for one node
  HarnessNumbers predicted, measured;
  int generated_single = 0;  // tokens the measured single stream produced (EOS may end it early)
  int generated_total = 0;   // tokens the N streams produced
};

// One device's speed on this machine for the topology's model, solved from the cost model:
// the whole model run in this process with `threads` threads.
struct DeviceSpeed {
  double step_s = 0;     // one decode step, one sequence
  double prefill_s = 0;  // one prompt of prompt_tokens
  double mem_bw_gbs = 0;
  double flops = 0;
};
DeviceSpeed calibrate_device(const Topology& t, int threads, int prompt_tokens, int gen_tokens);

// The cluster the prediction uses: the topology's devices with this machine's measured speeds.
partition::Cluster measured_cluster(const Topology& t, double kernel_gbps, double flops);

// Throws std::runtime_error with the reason (and the nodes' logs) when the cluster cannot start.
HarnessResult run_harness(const Topology& t, const HarnessOptions& o);
std::string format_harness(const HarnessResult& r, const Workload& w);

// Whether veth + tc netem work here; on failure the reason.
bool netem_available(std::string& why_not);

}  // namespace zen::sim
