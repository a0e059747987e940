// zen-node settings: one struct, read from a TOML file (load_config), overridden by
// command-line flags (add_config_flags + apply_flags), completed with derived defaults
// (resolve_defaults) and checked as a whole (validate). docs/CONFIG.md is the reference;
// cluster.example.toml at the repository root shows every key.
//
// The cluster secret and the API keys are sensitive: they are never part of describe()
// and never appear in an error message.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "transport/keys.h"
#include "transport/link.h"

namespace CLI {
class App;
}

namespace zen::node {

// Every bad setting: names the key (and the file line when it came from a file).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Role { coordinator, worker };
enum class ActivationType { f32, f16, bf16 };  // hidden states on the wire
const char* role_name(Role r);
const char* activation_name(ActivationType t);

struct HostPort {
  std::string host;   // name, IPv4 or IPv6 literal (without brackets)
  uint16_t port = 0;
  std::string str() const;  // "host:port", IPv6 as "[::1]:7700"
  bool operator==(const HostPort&) const = default;
};

struct DiscoveryConfig {
  bool enabled = true;
  uint16_t port = 7701;                    // UDP port beacons are sent to and received on
  std::chrono::milliseconds interval{2000};  // between two beacons
  // Where beacons go: IPv4 broadcast or multicast addresses (multicast groups are
  // joined for receiving), "host" or "host:port" (port defaults to `port`).
  std::vector<std::string> targets{"255.255.255.255"};
};

struct LimitsConfig {
  uint64_t max_request_bytes = uint64_t{1} << 20;  // largest HTTP request body
  int max_sequences = 8;                           // sequences in flight at once
  int max_batch_tokens = 512;                      // rows one pass of this node's stage takes
  std::chrono::milliseconds request_timeout{600000};  // per HTTP request; 0 = none
  // A running request whose stages answer nothing for this long lost a message: it is re-read
  // from its history (three times at most, then it fails). 0 = never.
  std::chrono::milliseconds step_timeout{120000};
};

// Speculative decoding on the coordinator: drafts are checked in one pass through the pipeline.
struct SpeculativeConfig {
  std::string mode = "off";           // off, lookup (n-grams of the context) or draft (draft_model)
  std::filesystem::path draft_model;  // GGUF with the same vocabulary (mode = draft)
  int max_draft = 8;                  // most tokens drafted per pass (k adapts to acceptance)
};

struct NodeConfig {
  std::string name;                     // "" -> the host name
  Role role = Role::worker;
  HostPort listen{"0.0.0.0", 7700};     // TCP address for peer links
  std::optional<HostPort> http = HostPort{"127.0.0.1", 8080};  // coordinator's API; nullopt: off
  std::filesystem::path data_dir;       // "" -> $XDG_CACHE_HOME/zen or ~/.cache/zen
  std::filesystem::path key_file;       // "" -> <data_dir>/node.key
  // Exactly one of these two. The inline form is base64 of the 32 secret bytes.
  std::string cluster_secret;           // SENSITIVE: never logged
  std::filesystem::path cluster_secret_file;
  std::filesystem::path model;          // GGUF: required on the coordinator, optional on workers
  std::vector<HostPort> peers;          // static peers this node dials
  std::vector<transport::PublicKey> allow;  // empty: any node that holds the cluster secret
  uint64_t memory_budget = 0;           // bytes this node may use for weights + KV; 0: what is available
  int threads = 0;                      // compute threads; 0: every hardware thread
  ActivationType activation_type = ActivationType::f32;
  std::vector<std::string> api_keys;    // SENSITIVE: HTTP bearer tokens; empty: no auth
  std::vector<int> layer_split;         // forced layers per stage (tests); empty: the planner decides
  DiscoveryConfig discovery;
  LimitsConfig limits;
  SpeculativeConfig speculative;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds failure_timeout{3000};  // silent this long: the node is gone
  // Benchmark only (hidden flag --bench-shape, no config key): shape what this node sends to a
  // peer like a slower network (`zen sim --run` where tc netem is unavailable).
  std::vector<transport::PeerShape> bench_shapes;
  // Tests only (hidden flag --debug-dump-logits, no config key): the last stage writes the raw
  // logits of every sampled row to DIR/r<request>-p<position>.f32.
  std::filesystem::path debug_dump_logits;
};

// Parses the file. Unknown keys, wrong types and bad values throw ConfigError naming the
// key and its line. Relative paths in the file are taken relative to the file's folder;
// "~/" is expanded. Keys the file leaves out keep NodeConfig's defaults.
NodeConfig load_config(const std::filesystem::path& path);
// Same, from TOML text (`origin` names it in messages; relative paths resolve against `base_dir`).
NodeConfig parse_config(std::string_view toml_text, std::string_view origin = "config",
                        const std::filesystem::path& base_dir = {});

// Command-line flags, one per key. Only flags actually given override the file.
struct ConfigFlags {
  std::string config;  // --config FILE
  std::optional<std::string> name, role, listen, http, data_dir, key_file, cluster_secret, cluster_secret_file,
      model, memory, activation_type, discovery_interval, max_request_bytes, request_timeout, heartbeat_interval,
      failure_timeout, layer_split, draft, step_timeout;
  std::optional<int> threads, max_sequences, max_batch_tokens, spec_k;
  std::optional<bool> lookup;
  std::optional<uint16_t> discovery_port;
  std::optional<bool> discovery;
  std::vector<std::string> peers, allow, api_keys, discovery_targets;
  std::vector<std::string> bench_shapes;  // hidden: "PEERKEY|*:LATENCY_S:BYTES_PER_S:LOSS"
  std::optional<std::string> debug_dump_logits;  // hidden
};
// "PEERKEY:0.002:12500000:0.01" or "*:..." -> a benchmark shape (key names the flag in errors).
transport::PeerShape parse_bench_shape(std::string_view text, std::string_view key);
// Registers the flags on `app`; the values land in `flags` when the app parses.
void add_config_flags(CLI::App& app, ConfigFlags& flags);
// Overrides `cfg` with every flag that was given (repeatable flags replace the file's list).
// Relative paths are taken relative to the current directory. Throws ConfigError.
void apply_flags(const ConfigFlags& flags, NodeConfig& cfg);
// --config (if given) + flags + resolve_defaults + validate: what zen-node does at start.
NodeConfig config_from_flags(const ConfigFlags& flags);

// Fills name, data_dir and key_file when they are empty.
void resolve_defaults(NodeConfig& cfg);
// One clear ConfigError for the first inconsistent setting.
void validate(const NodeConfig& cfg);
// The cluster secret from the inline value or the file (file permission rules apply).
transport::ClusterSecret load_cluster_secret(const NodeConfig& cfg);
// One start-up log line: every setting that is safe to show; never the secret or API keys.
std::string describe(const NodeConfig& cfg);

// Value parsers shared by the file and the flags (`key` names the setting in errors).
// "6GiB", "512MiB", "1.5GB", "4096" (bytes). Binary (KiB..TiB) and decimal (kB..TB) units.
uint64_t parse_size(std::string_view text, std::string_view key);
// "1s", "500ms", "2m", "1h", "0". A bare number is an error (the unit must be said).
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view key);
// "host:port", "[v6]:port"; `default_port` used when the port is left out (0: required).
HostPort parse_host_port(std::string_view text, std::string_view key, uint16_t default_port = 0);
Role parse_role(std::string_view text, std::string_view key);
ActivationType parse_activation_type(std::string_view text, std::string_view key);
// "4,4,3" -> {4, 4, 3}
std::vector<int> parse_layer_split(std::string_view text, std::string_view key);
std::string format_size(uint64_t bytes);        // "6 GiB", "1.50 GiB", "512 MiB", "100 B"
std::string format_duration(std::chrono::milliseconds d);  // "1s", "250ms", "10m"
// $XDG_CACHE_HOME/zen, else $HOME/.cache/zen, else ./.zen-cache
std::filesystem::path default_data_dir();

}  // namespace zen::node
