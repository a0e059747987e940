// Derived defaults, whole-config checks, the cluster secret and the start-up line.
#include <arpa/inet.h>
#include <unistd.h>

#include <cctype>

#include "node/config.h"

namespace zen::node {

namespace {

constexpr size_t kMaxNameBytes = 64;  // also the limit of a discovery beacon's name field

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "zen-node";
  std::string s(buf);
  if (s.size() > kMaxNameBytes) s.resize(kMaxNameBytes);
  return s;
}

bool is_ipv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

}  // namespace

void resolve_defaults(NodeConfig& c) {
  if (c.name.empty()) c.name = host_name();
  if (c.data_dir.empty()) c.data_dir = default_data_dir();
  if (c.key_file.empty()) c.key_file = c.data_dir / "node.key";
}

void validate(const NodeConfig& c) {
  auto fail = [](const std::string& msg) { throw ConfigError(msg); };
  if (c.cluster_secret.empty() && c.cluster_secret_file.empty())
    fail("no cluster secret: set cluster_secret_file (or cluster_secret) or pass --cluster-secret-file; "
         "make one with `zen keygen --secret FILE` and give every node the same one");
  if (!c.cluster_secret.empty() && !c.cluster_secret_file.empty())
    fail("cluster_secret and cluster_secret_file are both set: keep exactly one");
  if (c.name.empty()) fail("name: empty node name");
  if (c.name.size() > kMaxNameBytes) fail("name: longer than " + std::to_string(kMaxNameBytes) + " bytes");
  for (char ch : c.name)
    if (!std::isprint(static_cast<unsigned char>(ch)) && static_cast<unsigned char>(ch) < 0x80)
      fail("name: control characters are not allowed");
  if (c.role == Role::coordinator && c.model.empty())
    fail("role = coordinator needs a model: set model = \"path/to/model.gguf\" or pass --model");
  if (c.role == Role::worker && c.peers.empty() && !c.discovery.enabled)
    fail("a worker needs a way to find the coordinator: list it in peers (--peer HOST:PORT) or enable discovery");
  if (c.role == Role::worker && !c.layer_split.empty())
    fail("layer_split is a coordinator setting (the coordinator plans the slices)");
  for (const HostPort& p : c.peers)
    if (p.port == 0) fail("peers: " + p.str() + " has port 0");
  if (c.memory_budget != 0 && c.memory_budget < (uint64_t{1} << 20))
    fail(std::string("memory: ") + format_size(c.memory_budget) + " is too small (did you forget a unit, e.g. \"6GiB\"?)");
  for (size_t i = 0; i < c.api_keys.size(); ++i) {
    const std::string& k = c.api_keys[i];
    bool bad = k.size() < 8;
    for (char ch : k) bad = bad || !std::isgraph(static_cast<unsigned char>(ch));
    if (bad) fail("api_keys[" + std::to_string(i) + "]: an API key needs at least 8 printable characters, no spaces");
  }
  if (c.limits.max_request_bytes < 1024) fail("limits.max_request_bytes: less than 1 KiB");
  if (c.limits.max_sequences < 1) fail("limits.max_sequences: must be at least 1");
  if (c.limits.max_batch_tokens < 1) fail("limits.max_batch_tokens: must be at least 1");
  const SpeculativeConfig& sp = c.speculative;
  if (sp.mode != "off" && sp.mode != "lookup" && sp.mode != "draft")
    fail("speculative.mode: '" + sp.mode + "' is not off, lookup or draft");
  if (sp.mode == "draft" && sp.draft_model.empty()) fail("speculative.mode = draft needs speculative.draft_model (--draft FILE)");
  if (sp.mode != "draft" && !sp.draft_model.empty() && sp.mode != "off")
    fail("speculative.draft_model is set but speculative.mode is " + sp.mode);
  if (sp.max_draft < 1 || sp.max_draft > 32) fail("speculative.max_draft: must be from 1 to 32");
  if (sp.mode != "off" && c.role == Role::worker) fail("speculative decoding is a coordinator setting");
  if (c.heartbeat_interval.count() <= 0) fail("heartbeat.interval: must be positive");
  if (c.failure_timeout <= c.heartbeat_interval)
    fail(std::string("heartbeat.failure_timeout (") + format_duration(c.failure_timeout) + ") must be longer than heartbeat.interval (" +
         format_duration(c.heartbeat_interval) + ")");
  if (c.discovery.enabled) {
    if (c.discovery.interval.count() < 100) fail("discovery.interval: at least 100ms");
    if (c.discovery.targets.empty()) fail("discovery.targets: empty while discovery is enabled");
    for (const std::string& t : c.discovery.targets) {
      const HostPort hp = parse_host_port(t, "discovery.targets", c.discovery.port);
      if (!is_ipv4(hp.host)) fail("discovery.targets: '" + t + "' is not an IPv4 address");
      if (hp.port == 0) fail("discovery.targets: '" + t + "' has port 0");
    }
  }
}

transport::ClusterSecret load_cluster_secret(const NodeConfig& c) {
  if (!c.cluster_secret.empty()) {
    try {
      return transport::parse_cluster_secret(c.cluster_secret);
    } catch (const std::exception& e) {
      throw ConfigError(std::string("cluster_secret: ") + e.what());
    }
  }
  if (c.cluster_secret_file.empty()) throw ConfigError("no cluster secret configured");
  try {
    return transport::load_cluster_secret_file(c.cluster_secret_file);
  } catch (const std::exception& e) {
    throw ConfigError(std::string("cluster_secret_file: ") + e.what());
  }
}

std::string describe(const NodeConfig& c) {
  std::string s;
  // " key=value", appended piece by piece.
  auto add = [&s](std::string_view key, std::string_view value) {
    s += ' ';
    s += key;
    s += '=';
    s += value;
  };
  auto join = [](const auto& items, auto&& str) {
    std::string out;
    for (const auto& x : items) {
      if (!out.empty()) out += ',';
      out += str(x);
    }
    return out;
  };
  s = "node '";
  s += c.name;
  s += '\'';
  add("role", role_name(c.role));
  add("listen", c.listen.str());
  if (c.role == Role::coordinator) add("http", c.http ? c.http->str() : "off");
  add("data_dir", c.data_dir.string());
  add("key_file", c.key_file.string());
  if (c.cluster_secret_file.empty()) add("secret", "inline");
  else add("secret_file", c.cluster_secret_file.string());
  add("model", c.model.empty() ? "none" : c.model.string());
  add("peers", "[" + join(c.peers, [](const HostPort& p) { return p.str(); }) + "]");
  add("allow", c.allow.empty() ? "any" : std::to_string(c.allow.size()) + " keys");
  add("memory", c.memory_budget == 0 ? "available" : format_size(c.memory_budget));
  add("threads", c.threads == 0 ? "all" : std::to_string(c.threads));
  add("activations", activation_name(c.activation_type));
  if (c.discovery.enabled) {
    add("discovery", "udp/" + std::to_string(c.discovery.port));
    add("discovery_interval", format_duration(c.discovery.interval));
    add("discovery_targets", join(c.discovery.targets, [](const std::string& t) { return t; }));
  } else {
    add("discovery", "off");
  }
  if (c.role == Role::coordinator) {
    add("api_keys", std::to_string(c.api_keys.size()));
    add("max_body", format_size(c.limits.max_request_bytes));
    add("request_timeout", c.limits.request_timeout.count() == 0 ? "none" : format_duration(c.limits.request_timeout));
    add("step_timeout", c.limits.step_timeout.count() == 0 ? "none" : format_duration(c.limits.step_timeout));
  }
  add("max_sequences", std::to_string(c.limits.max_sequences));
  add("max_batch_tokens", std::to_string(c.limits.max_batch_tokens));
  if (c.speculative.mode != "off")
    add("speculative", c.speculative.mode + (c.speculative.mode == "draft" ? " " + c.speculative.draft_model.string() : "") +
                           " k<=" + std::to_string(c.speculative.max_draft));
  add("heartbeat", format_duration(c.heartbeat_interval));
  add("failure_timeout", format_duration(c.failure_timeout));
  if (!c.layer_split.empty()) add("layer_split", join(c.layer_split, [](int n) { return std::to_string(n); }));
  return s;
}

}  // namespace zen::node
