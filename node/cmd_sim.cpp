// zen sim TOPOLOGY.toml [--requests N] [--prompt-tokens P] [--gen-tokens G] [--json]
// Plans the topology's model over its devices, simulates the pipeline for N concurrent requests
// and prints the plan, memory per device, the predicted speed and which single change helps most.
// Runs nothing on any device; exits 2 when the model does not fit.
//   zen sim --run TOPOLOGY.toml [--threads T] [--repeats R] [--shaping auto|netem|transport] [--keep DIR]
// runs the topology for real on this machine (sim/harness.h) and prints measured vs predicted.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "node/cli.h"
#include "sim/harness.h"
#include "sim/report.h"

namespace zen::cli {

namespace {

struct SimCliOptions {
  std::string topology;
  sim::Workload workload{4, 128, 128};
  bool json = false;
  bool run = false;
  sim::HarnessOptions harness;
  std::string keep;
};

// zen-node next to this zen executable.
std::filesystem::path zen_node_binary() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("zen-node") : self.parent_path() / "zen-node";
}

}  // namespace

void add_sim(CLI::App& app) {
  auto o = std::make_shared<SimCliOptions>();
  CLI::App* cmd = app.add_subcommand("sim", "predict plan and speed for a topology file (devices, links, model)");
  cmd->add_option("topology", o->topology, "topology TOML (see docs/SIM.md)")->required();
  cmd->add_option("--requests", o->workload.requests, "concurrent requests")->capture_default_str()->check(CLI::Range(1, 10000));
  cmd->add_option("--prompt-tokens", o->workload.prompt_tokens, "prompt tokens per request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--gen-tokens", o->workload.gen_tokens, "generated tokens per request")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_flag("--json", o->json, "print one JSON object instead of text");
  cmd->add_flag("--run", o->run, "run the topology for real here (one zen-node per device, shaped links) and "
                                 "print measured against predicted");
  cmd->add_option("--threads", o->harness.threads, "--run: compute threads per node")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--repeats", o->harness.repeats, "--run: TTFT and single-stream runs (the median counts)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  cmd->add_option("--shaping", o->harness.shaping, "--run: auto, netem or transport")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "netem", "transport"}));
  cmd->add_option("--keep", o->keep, "--run: keep keys, logs and data in this folder");
  cmd->callback([o] {
    const sim::Topology t = sim::load_topology(o->topology);
    if (o->run) {
      o->harness.workload = o->workload;
      o->harness.zen_node = zen_node_binary();
      if (!o->keep.empty()) {
        o->harness.work_dir = o->keep;
        o->harness.keep = true;
      }
      const sim::HarnessResult r = sim::run_harness(t, o->harness);
      const std::string out = sim::format_harness(r, o->workload);
      std::fwrite(out.data(), 1, out.size(), stdout);
      return;
    }
    const sim::Report r = sim::make_report(t, o->workload);
    const std::string out = o->json ? sim::format_json(r) : sim::format_text(r);
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (!r.plan.fits) throw CLI::RuntimeError(2);
  });
}

}  // namespace zen::cli
