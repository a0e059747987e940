// sim/: a discrete-event simulation of the pipeline a plan describes, and advice on which single
// change to the cluster would help most. Uses partition's cost model for every stage pass
// (stage_step_s, stage_prefill_s) and every message (message_s, message_busy_s), so with one
// request it reproduces partition::predict; with several it shows queueing and batching.
#pragma once

#include <string>
#include <vector>

#include "partition/partition.h"

namespace zen::sim {

struct Workload {
  int requests = 1;        // all arrive at time 0
  int prompt_tokens = 128;
  int gen_tokens = 128;    // including the first token, which prefill yields
};

// How busy one resource (a stage, or one direction of a link) was over the run.
struct ResourceUse {
  std::string name;   // "stage 0 (laptop)", "link laptop->phone"
  bool is_stage = false;
  int stage = 0;      // pipeline index (for a link: the stage that sends; the coordinator's hop is 0)
  double busy_s = 0;
  double utilization = 0;  // busy_s / makespan
  double mean_batch = 0;   // sequences per pass (stages) or per message (links)
};

struct SimResult {
  double makespan_s = 0;            // until the last request's last token reaches the coordinator
  double mean_ttft_s = 0;           // over requests
  double max_ttft_s = 0;
  double single_tokens_per_s = 0;   // the mean per-request decode rate after its first token
  double aggregate_tokens_per_s = 0;  // every generated token / makespan
  double decode_tokens_per_s = 0;   // tokens after the first / (makespan - first TTFT)
  // Tokens per second while every request is decoding (after the last first token, before the
  // first request finishes); 0 when that window holds fewer than two token arrivals.
  double steady_tokens_per_s = 0;
  std::vector<ResourceUse> resources;  // pipeline order
  int busiest = 0;                     // index into resources
  uint64_t events = 0;
};

// Runs `w` through `stages`. The model and options give the costs (options.prompt_tokens and
// gen_tokens set the KV context the stages read; simulate() fills them from the workload).
SimResult simulate(const partition::ModelCost&, const partition::Cluster&, const std::vector<partition::Stage>&,
                   const Workload&, partition::PlanOptions);

// Options that make the planner's assumptions match a workload.
partition::PlanOptions plan_options_for(const Workload&);

// What violates physics or looks implausible in a plan and its prediction: a stage faster than its
// device can stream the stage's weights, bandwidth beyond any consumer memory system, ...
std::vector<std::string> physics_warnings(const partition::ModelCost&, const partition::Cluster&,
                                          const partition::Plan&, double simulated_tokens_per_s);

struct Advice {
  std::string change;           // "2x bandwidth on link laptop-phone", "2x memory bandwidth on phone", ...
  double tokens_per_s = 0;      // single-stream, simulated, after the change
  double aggregate_tokens_per_s = 0;
  double gain = 0;              // tokens_per_s / baseline - 1
  bool plan_changed = false;    // the planner chose other devices or another split
};

// Tries each single change (2x bandwidth on each link, 2x memory bandwidth on each device, 2x memory
// on each device), re-plans and re-simulates, and returns them best first (by single-stream rate,
// then aggregate). Changes the planner cannot use (the plan does not fit) are left out.
std::vector<Advice> advise(const partition::ModelCost&, const partition::Cluster&, const Workload&);

}  // namespace zen::sim
