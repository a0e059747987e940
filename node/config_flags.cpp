// zen-node command-line flags: one per config key, each overriding the file.
#include <CLI/CLI.hpp>

#include "node/config.h"

namespace zen::node {

namespace {

// A flag that stores its text into an optional (so "not given" stays distinguishable).
template <class T>
CLI::Option* opt(CLI::App& app, const std::string& name, std::optional<T>& dst, const std::string& help) {
  return app.add_option_function<T>(name, [&dst](const T& v) { dst = v; }, help);
}

// A repeatable flag: one value per occurrence, commas also separate values.
CLI::Option* multi(CLI::App& app, const std::string& name, std::vector<std::string>& dst, const std::string& help,
                   bool split_commas = true) {
  CLI::Option* o = app.add_option(name, dst, help)->allow_extra_args(false);
  if (split_commas) o->delimiter(',');
  return o;
}

}  // namespace

void add_config_flags(CLI::App& app, ConfigFlags& f) {
  app.add_option("-c,--config", f.config, "TOML config file (cluster.example.toml shows every key)");
  opt(app, "--name", f.name, "node name (default: host name)");
  opt(app, "--role", f.role, "coordinator or worker");
  opt(app, "--listen", f.listen, "TCP address for peer links, host:port (default 0.0.0.0:7700)");
  opt(app, "--http", f.http, "coordinator HTTP API address, host:port; \"\" disables (default 127.0.0.1:8080)");
  opt(app, "--data-dir", f.data_dir, "cache directory for keys and model slices (default ~/.cache/zen)");
  opt(app, "--key-file", f.key_file, "node identity key file (default <data-dir>/node.key; made on first start)");
  opt(app, "--cluster-secret-file", f.cluster_secret_file, "file holding the base64 cluster secret (zen keygen)");
  opt(app, "--cluster-secret", f.cluster_secret,
      "base64 cluster secret inline (visible to other local users in the process list: prefer the file)");
  opt(app, "-m,--model", f.model, "GGUF model (required on the coordinator; optional on workers)");
  multi(app, "--peer", f.peers, "static peer host:port to dial (repeatable; replaces the file's list)");
  multi(app, "--allow", f.allow, "base64 public key of an admitted peer (repeatable; replaces the file's list)");
  opt(app, "--memory", f.memory, "memory budget for weights and KV cache, e.g. 6GiB (default: what is available)");
  opt(app, "-t,--threads", f.threads, "compute threads (default: every hardware thread)");
  opt(app, "--activation-type", f.activation_type, "hidden states on the wire: f32 (exact), f16 or bf16");
  multi(app, "--api-key", f.api_keys, "HTTP API bearer token (repeatable; replaces the file's list)", false);
  opt(app, "--layer-split", f.layer_split, "forced layers per stage, e.g. 4,4,3 (tests; default: planned)");
  app.add_flag_function(
      "--discovery,!--no-discovery", [&f](int64_t n) { f.discovery = n > 0; }, "LAN discovery beacons on or off");
  opt(app, "--discovery-port", f.discovery_port, "UDP port for discovery beacons (default 7701)");
  opt(app, "--discovery-interval", f.discovery_interval, "time between beacons (default 2s)");
  multi(app, "--discovery-target", f.discovery_targets,
        "beacon destination: broadcast or multicast address, host[:port] (repeatable)");
  opt(app, "--max-request-bytes", f.max_request_bytes, "largest HTTP request body (default 1MiB)");
  opt(app, "--max-sequences", f.max_sequences, "sequences in flight at once (default 8)");
  opt(app, "--max-batch-tokens", f.max_batch_tokens, "rows one pass of this node's stage takes, prompts and decode steps (default 512)");
  opt(app, "--draft", f.draft, "speculative decoding with this draft model (coordinator; same vocabulary)");
  app.add_flag("--lookup", f.lookup, "speculative decoding with prompt-lookup drafts (coordinator)");
  opt(app, "--spec-k", f.spec_k, "most tokens drafted per pass (default 8; adapts to acceptance)");
  opt(app, "--request-timeout", f.request_timeout, "per HTTP request; 0 = none (default 10m)");
  opt(app, "--step-timeout", f.step_timeout, "a request whose stages answer nothing this long is re-read; 0 = never (default 2m)");
  opt(app, "--heartbeat-interval", f.heartbeat_interval, "heartbeat period on every link (default 1s)");
  opt(app, "--failure-timeout", f.failure_timeout, "a peer silent this long is declared gone (default 3s)");
  // Benchmarks only (zen sim --run): not in --help.
  multi(app, "--bench-shape", f.bench_shapes, "", false)->group("");
  app.add_option("--debug-dump-logits", f.debug_dump_logits, "")->group("");
}

transport::PeerShape parse_bench_shape(std::string_view text, std::string_view key) {
  const std::string t(text);
  const auto bad = [&](const std::string& why) {
    return ConfigError(std::string(key) + ": '" + t + "': " + why + " (expected PEERKEY|*:LATENCY_S:BYTES_PER_S:LOSS)");
  };
  std::vector<std::string> parts;
  for (size_t a = 0;;) {
    const size_t b = t.find(':', a);
    parts.push_back(t.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  if (parts.size() != 4) throw bad("needs four fields");
  transport::PeerShape p;
  if (parts[0] != "*") {
    try {
      p.peer = transport::parse_public_key(parts[0]);
    } catch (const std::exception& e) {
      throw bad(e.what());
    }
  }
  double v[3];
  for (int i = 0; i < 3; ++i) {
    size_t used = 0;
    try {
      v[i] = std::stod(parts[static_cast<size_t>(i) + 1], &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != parts[static_cast<size_t>(i) + 1].size() || !(v[i] >= 0) || v[i] > 1e12)
      throw bad("field " + std::to_string(i + 2) + " is not a non-negative number");
  }
  if (v[2] >= 1) throw bad("loss must be below 1");
  p.shape = transport::LinkShape{v[0], v[1], v[2], 1};
  return p;
}

void apply_flags(const ConfigFlags& f, NodeConfig& c) {
  if (f.name) c.name = *f.name;
  if (f.role) c.role = parse_role(*f.role, "--role");
  if (f.listen) c.listen = parse_host_port(*f.listen, "--listen");
  if (f.http) c.http = f.http->empty() ? std::nullopt : std::optional<HostPort>(parse_host_port(*f.http, "--http"));
  if (f.data_dir) c.data_dir = *f.data_dir;
  if (f.key_file) c.key_file = *f.key_file;
  if (f.cluster_secret && f.cluster_secret_file)
    throw ConfigError("--cluster-secret and --cluster-secret-file: give only one");
  if (f.cluster_secret) {
    try {
      (void)transport::parse_cluster_secret(*f.cluster_secret);
    } catch (const std::exception& e) {
      throw ConfigError(std::string("--cluster-secret: ") + e.what());
    }
    c.cluster_secret = *f.cluster_secret;
    c.cluster_secret_file.clear();
  }
  if (f.cluster_secret_file) {
    c.cluster_secret_file = *f.cluster_secret_file;
    c.cluster_secret.clear();
  }
  if (f.model) c.model = *f.model;
  if (!f.peers.empty()) {
    c.peers.clear();
    for (const std::string& p : f.peers) c.peers.push_back(parse_host_port(p, "--peer"));
  }
  if (!f.allow.empty()) {
    c.allow.clear();
    for (const std::string& k : f.allow) {
      try {
        c.allow.push_back(transport::parse_public_key(k));
      } catch (const std::exception& e) {
        throw ConfigError("--allow: '" + k + "': " + e.what());
      }
    }
  }
  if (f.memory) c.memory_budget = parse_size(*f.memory, "--memory");
  if (f.threads) {
    if (*f.threads < 0 || *f.threads > 4096) throw ConfigError("--threads: must be from 0 to 4096");
    c.threads = *f.threads;
  }
  if (f.activation_type) c.activation_type = parse_activation_type(*f.activation_type, "--activation-type");
  if (!f.api_keys.empty()) c.api_keys = f.api_keys;
  if (f.layer_split) c.layer_split = parse_layer_split(*f.layer_split, "--layer-split");
  if (f.discovery) c.discovery.enabled = *f.discovery;
  if (f.discovery_port) {
    if (*f.discovery_port == 0) throw ConfigError("--discovery-port: must be from 1 to 65535");
    c.discovery.port = *f.discovery_port;
  }
  if (f.discovery_interval) c.discovery.interval = parse_duration(*f.discovery_interval, "--discovery-interval");
  if (!f.discovery_targets.empty()) c.discovery.targets = f.discovery_targets;
  if (f.max_request_bytes) c.limits.max_request_bytes = parse_size(*f.max_request_bytes, "--max-request-bytes");
  if (f.max_sequences) {
    if (*f.max_sequences < 1 || *f.max_sequences > 4096) throw ConfigError("--max-sequences: must be from 1 to 4096");
    c.limits.max_sequences = *f.max_sequences;
  }
  if (f.max_batch_tokens) {
    if (*f.max_batch_tokens < 1 || *f.max_batch_tokens > 65536) throw ConfigError("--max-batch-tokens: must be from 1 to 65536");
    c.limits.max_batch_tokens = *f.max_batch_tokens;
  }
  if (f.draft && f.lookup && *f.lookup) throw ConfigError("--draft and --lookup: give only one");
  if (f.draft) {
    c.speculative.mode = "draft";
    c.speculative.draft_model = *f.draft;
  }
  if (f.lookup && *f.lookup) c.speculative.mode = "lookup";
  if (f.spec_k) c.speculative.max_draft = *f.spec_k;
  if (f.request_timeout) c.limits.request_timeout = parse_duration(*f.request_timeout, "--request-timeout");
  if (f.step_timeout) c.limits.step_timeout = parse_duration(*f.step_timeout, "--step-timeout");
  if (f.heartbeat_interval) c.heartbeat_interval = parse_duration(*f.heartbeat_interval, "--heartbeat-interval");
  if (f.failure_timeout) c.failure_timeout = parse_duration(*f.failure_timeout, "--failure-timeout");
  if (f.debug_dump_logits) c.debug_dump_logits = *f.debug_dump_logits;
  if (!f.bench_shapes.empty()) {
    c.bench_shapes.clear();
    for (const std::string& s : f.bench_shapes) c.bench_shapes.push_back(parse_bench_shape(s, "--bench-shape"));
  }
}

NodeConfig config_from_flags(const ConfigFlags& flags) {
  NodeConfig c = flags.config.empty() ? NodeConfig{} : load_config(flags.config);
  apply_flags(flags, c);
  resolve_defaults(c);
  validate(c);
  return c;
}

}  // namespace zen::node
