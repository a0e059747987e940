// zen sim TOPOLOGY.toml [--requests N] [--prompt-tokens P] [--gen-tokens G] [--json]
// Plans the topology's model over its devices, simulates the pipeline for N concurrent requests
// and prints the plan, memory per device, the predicted speed and which single change helps most.
// Runs nothing on any device; exits 2 when the model does not fit.
#include <cstdio>

#include "node/cli.h"
#include "sim/report.h"

namespace zen::cli {

namespace {

struct SimCliOptions {
  std::string topology;
  sim::Workload workload{4, 128, 128};
  bool json = false;
};

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
  cmd->callback([o] {
    const sim::Topology t = sim::load_topology(o->topology);
    const sim::Report r = sim::make_report(t, o->workload);
    const std::string out = o->json ? sim::format_json(r) : sim::format_text(r);
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (!r.plan.fits) throw CLI::RuntimeError(2);
  });
}

}  // namespace zen::cli
