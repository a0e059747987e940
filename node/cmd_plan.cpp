// zen plan --config cluster.toml [--node NAME=MEMORY[@GBPS]]... [--prompt-tokens P] [--streams N]
// Prints the plan the coordinator would choose, the memory per node and the predicted speed,
// without starting anything. The coordinator's own settings (model, memory budget, threads,
// forced layer split) come from the config; each --node adds a worker with its memory budget
// and, optionally, its measured weight-streaming bandwidth in GB/s.
#include <cstdio>

#include "engine/model.h"
#include "node/cli.h"
#include "node/config.h"
#include "node/model_cost.h"

namespace zen::cli {

namespace {

struct PlanCliOptions {
  node::ConfigFlags flags;
  std::vector<std::string> nodes;
  int prompt_tokens = 128;
  int streams = 4;
  double self_gbps = 20;
};

partition::Device parse_node(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--node " + spec + ": expected NAME=MEMORY[@GBPS]");
  partition::Device d;
  d.name = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  const size_t at = rest.find('@');
  d.mem_bw_gbs = 20;
  if (at != std::string::npos) {
    d.mem_bw_gbs = std::stod(rest.substr(at + 1));
    rest = rest.substr(0, at);
  }
  d.mem_bytes = node::parse_size(rest, "--node " + d.name);
  d.flops = 100e9;
  d.overhead_s = 50e-6;
  return d;
}

int run(const PlanCliOptions& o) {
  node::NodeConfig cfg = node::config_from_flags(o.flags);
  if (cfg.model.empty()) throw std::invalid_argument("the config names no model");
  auto file = engine::GgufModelFile::open(cfg.model.string());
  const engine::Hparams hp = engine::Hparams::from_gguf(file->gguf());
  const auto cost = node::model_cost(file->gguf(), hp, cfg.activation_type == node::ActivationType::f32 ? 4 : 2);
  partition::Cluster cluster;
  partition::Device self;
  self.name = cfg.name;
  self.mem_bytes = cfg.memory_budget ? cfg.memory_budget : (uint64_t{8} << 30);
  self.mem_bw_gbs = o.self_gbps;
  self.flops = 100e9;
  self.overhead_s = 50e-6;
  cluster.devices.push_back(self);
  for (const auto& n : o.nodes) cluster.devices.push_back(parse_node(n));
  partition::PlanOptions po;
  po.prompt_tokens = o.prompt_tokens;
  po.n_streams = o.streams;
  po.kv_tokens = static_cast<uint64_t>(std::min<int64_t>(hp.n_ctx_train, 4096));
  if (!cfg.layer_split.empty()) {
    po.forced_layers_per_stage = cfg.layer_split;
    std::vector<int> order;
    for (size_t i = 0; i < cfg.layer_split.size() && i < cluster.devices.size(); ++i) order.push_back(static_cast<int>(i));
    po.forced_order = order;
  }
  const partition::Plan p = partition::plan(cost, cluster, po);
  std::printf("model %s: %s, %lld layers, %s of weights\n", cfg.model.c_str(), hp.arch.c_str(),
              static_cast<long long>(hp.n_layer), partition::format_bytes(file->map().bytes().size()).c_str());
  std::printf("%s", partition::describe(p, cluster).c_str());
  if (!p.fits) {
    std::fprintf(stderr, "zen plan: the model does not fit: %s\n", p.why_not.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

void add_plan(CLI::App& app) {
  auto o = std::make_shared<PlanCliOptions>();
  CLI::App* cmd = app.add_subcommand("plan", "print the plan and predicted speed for a cluster, running nothing");
  node::add_config_flags(*cmd, o->flags);
  cmd->add_option("--node", o->nodes, "a worker: NAME=MEMORY[@GBPS], e.g. laptop=16GiB@60 (repeatable)");
  cmd->add_option("--self-gbps", o->self_gbps, "the coordinator's weight-streaming bandwidth, GB/s")->capture_default_str();
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "prompt length for the time to first token")->capture_default_str();
  cmd->add_option("--streams", o->streams, "concurrent streams for the aggregate prediction")->capture_default_str();
  cmd->callback([o] {
    const int rc = run(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace zen::cli
