// zen-node config file: the example loads with the values it shows, unknown keys and bad
// values are errors naming the key and the line, validate() catches inconsistent settings,
// and describe() never shows the secret or the API keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "node/config.h"

namespace zen::node {
namespace {

using namespace std::chrono_literals;

const char* kSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";  // bytes 0..31

// Parses `text` and returns the error message ("" when it parsed).
std::string error_of(const std::string& text) {
  try {
    (void)parse_config(text, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string validate_error(const NodeConfig& c) {
  try {
    validate(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

NodeConfig valid_worker() {
  NodeConfig c;
  c.cluster_secret = kSecret;
  c.peers = {HostPort{"10.0.0.1", 7700}};
  resolve_defaults(c);
  return c;
}

TEST(Config, ExampleFileLoadsWithTheValuesItShows) {
  const std::filesystem::path path = std::filesystem::path(ZEN_SOURCE_DIR) / "cluster.example.toml";
  const NodeConfig c = load_config(path);
  EXPECT_EQ(c.name, "laptop");
  EXPECT_EQ(c.role, Role::coordinator);
  EXPECT_EQ(c.listen, (HostPort{"0.0.0.0", 7700}));
  ASSERT_TRUE(c.http.has_value());
  EXPECT_EQ(*c.http, (HostPort{"127.0.0.1", 8080}));
  const char* home = std::getenv("HOME");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(c.data_dir, (std::filesystem::path(home) / ".cache/zen").lexically_normal());
  // Relative paths are relative to the file's folder.
  EXPECT_EQ(c.cluster_secret_file, std::filesystem::path(ZEN_SOURCE_DIR) / "cluster.secret");
  EXPECT_EQ(c.model, std::filesystem::path(ZEN_SOURCE_DIR) / "models/tinyllama-1.1b-chat.Q4_K_M.gguf");
  EXPECT_TRUE(c.cluster_secret.empty());
  EXPECT_EQ(c.memory_budget, uint64_t{6} << 30);
  EXPECT_EQ(c.activation_type, ActivationType::f32);
  EXPECT_TRUE(c.discovery.enabled);
  EXPECT_EQ(c.discovery.port, 7701);
  EXPECT_EQ(c.discovery.interval, 2s);
  EXPECT_EQ(c.discovery.targets, std::vector<std::string>{"255.255.255.255"});
  EXPECT_EQ(c.limits.max_request_bytes, uint64_t{1} << 20);
  EXPECT_EQ(c.limits.max_sequences, 8);
  EXPECT_EQ(c.limits.max_batch_tokens, 512);
  EXPECT_EQ(c.limits.request_timeout, 10min);
  EXPECT_EQ(c.heartbeat_interval, 1s);
  EXPECT_EQ(c.failure_timeout, 3s);
  NodeConfig r = c;
  resolve_defaults(r);
  EXPECT_NO_THROW(validate(r));
}

TEST(Config, EmptyFileGivesTheDefaults) {
  const NodeConfig c = parse_config("", "empty.toml");
  const NodeConfig d;
  EXPECT_EQ(c.role, Role::worker);
  EXPECT_EQ(c.listen, d.listen);
  EXPECT_EQ(c.listen, (HostPort{"0.0.0.0", 7700}));
  EXPECT_EQ(c.http, (std::optional<HostPort>(HostPort{"127.0.0.1", 8080})));
  EXPECT_EQ(c.heartbeat_interval, 1s);
  EXPECT_EQ(c.failure_timeout, 3s);
  EXPECT_TRUE(c.discovery.enabled);
  EXPECT_EQ(c.memory_budget, 0u);
  EXPECT_TRUE(c.name.empty());
}

TEST(Config, EveryKeyIsRead) {
  const NodeConfig c = parse_config(R"(
name = "n1"
role = "worker"
listen = "[::]:9000"
http = ""
data_dir = "/var/zen"
key_file = "keys/n1.key"
cluster_secret = ")" + std::string(kSecret) + R"("
model = "/m/a.gguf"
peers = ["10.0.0.1:7700", "[fe80::1]:7701"]
allow = [")" + std::string(kSecret) + R"("]
memory = "1.5GiB"
threads = 3
activation_type = "BF16"
api_keys = ["abcdefgh1"]
layer_split = [2, 3]
[discovery]
enabled = false
port = 9999
interval = "250ms"
targets = ["239.255.77.77", "10.0.0.255:8000"]
[limits]
max_request_bytes = 65536
max_sequences = 3
max_batch_tokens = 64
request_timeout = "0"
[heartbeat]
interval = "200ms"
failure_timeout = "1.5s"
)",
                                    "t.toml", "/etc/zen");
  EXPECT_EQ(c.name, "n1");
  EXPECT_EQ(c.listen, (HostPort{"::", 9000}));
  EXPECT_EQ(c.listen.str(), "[::]:9000");
  EXPECT_FALSE(c.http.has_value());
  EXPECT_EQ(c.data_dir, "/var/zen");
  EXPECT_EQ(c.key_file, "/etc/zen/keys/n1.key");
  EXPECT_EQ(c.cluster_secret, kSecret);
  EXPECT_EQ(c.model, "/m/a.gguf");
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[1], (HostPort{"fe80::1", 7701}));
  ASSERT_EQ(c.allow.size(), 1u);
  EXPECT_EQ(c.allow[0][31], 31);
  EXPECT_EQ(c.memory_budget, uint64_t{3} << 29);
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.activation_type, ActivationType::bf16);
  EXPECT_EQ(c.api_keys, std::vector<std::string>{"abcdefgh1"});
  EXPECT_EQ(c.layer_split, (std::vector<int>{2, 3}));
  EXPECT_FALSE(c.discovery.enabled);
  EXPECT_EQ(c.discovery.port, 9999);
  EXPECT_EQ(c.discovery.interval, 250ms);
  EXPECT_EQ(c.discovery.targets.size(), 2u);
  EXPECT_EQ(c.limits.max_request_bytes, 65536u);
  EXPECT_EQ(c.limits.max_sequences, 3);
  EXPECT_EQ(c.limits.max_batch_tokens, 64);
  EXPECT_EQ(c.limits.request_timeout, 0ms);
  EXPECT_EQ(c.heartbeat_interval, 200ms);
  EXPECT_EQ(c.failure_timeout, 1500ms);
}

TEST(Config, UnknownKeysNameTheKeyAndTheLine) {
  std::string e = error_of("name = \"a\"\nthreds = 4\n");
  EXPECT_NE(e.find("test.toml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'threds'"), std::string::npos) << e;
  EXPECT_NE(e.find("threads"), std::string::npos) << e;  // the known keys are listed

  e = error_of("[discovery]\nenabled = true\n\nbroadcast = true\n");
  EXPECT_NE(e.find("test.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("'discovery.broadcast'"), std::string::npos) << e;

  e = error_of("[heartbeats]\ninterval = \"1s\"\n");
  EXPECT_NE(e.find("test.toml:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("'heartbeats'"), std::string::npos) << e;
}

TEST(Config, WrongTypesNameTheKey) {
  struct Case {
    const char* text;
    const char* key;
    const char* what;
  } cases[] = {
      {"threads = \"4\"", "threads", "expected an integer, got a string"},
      {"name = 5", "name", "expected a string, got an integer"},
      {"peers = \"a:1\"", "peers", "expected an array"},
      {"peers = [1]", "peers[0]", "expected a string"},
      {"memory = true", "memory", "expected a size"},
      {"[discovery]\nenabled = \"yes\"", "discovery.enabled", "expected true or false"},
      {"discovery = 1", "discovery", "expected a table"},
      {"[heartbeat]\ninterval = 1000", "heartbeat.interval", "expected a duration"},
      {"layer_split = [\"4\"]", "layer_split[0]", "expected an integer"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.text);
    EXPECT_NE(e.find(std::string(c.key) + ": "), std::string::npos) << c.text << " -> " << e;
    EXPECT_NE(e.find(c.what), std::string::npos) << c.text << " -> " << e;
    EXPECT_NE(e.find("test.toml:"), std::string::npos) << e;
  }
}

TEST(Config, BadValuesNameTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"role = \"boss\"", "role: "},
      {"listen = \"localhost\"", "listen: "},
      {"listen = \"h:70000\"", "listen: "},
      {"listen = \"::1:7700\"", "listen: "},
      {"memory = \"6 GiBs\"", "memory: "},
      {"memory = \"lots\"", "memory: "},
      {"memory = -1", "memory: "},
      {"threads = -2", "threads: "},
      {"activation_type = \"f8\"", "activation_type: "},
      {"peers = [\"10.0.0.1\"]", "peers: "},
      {"allow = [\"not-a-key\"]", "allow: "},
      {"layer_split = [4, 0]", "layer_split[1]: "},
      {"model = \"\"", "model: "},
      {"[discovery]\nport = 0", "discovery.port: "},
      {"[limits]\nmax_sequences = 0", "limits.max_sequences: "},
      {"[limits]\nmax_batch_tokens = 0", "limits.max_batch_tokens: "},
      {"[heartbeat]\nfailure_timeout = \"3\"", "heartbeat.failure_timeout: "},
      {"[heartbeat]\ninterval = \"1d\"", "heartbeat.interval: "},
  };
  for (const auto& [text, key] : cases) {
    const std::string e = error_of(text);
    EXPECT_NE(e.find(key), std::string::npos) << text << " -> " << e;
  }
}

TEST(Config, SyntaxErrorsGiveTheLine) {
  const std::string e = error_of("name = \"a\"\nrole = \n");
  EXPECT_NE(e.find("test.toml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("TOML syntax error"), std::string::npos) << e;
}

TEST(Config, BadInlineSecretIsRefusedWithoutShowingIt) {
  const std::string bad = "c2VjcmV0LWJ1dC10b28tc2hvcnQ=";  // valid base64, 21 bytes
  const std::string e = error_of("cluster_secret = \"" + bad + "\"");
  EXPECT_NE(e.find("cluster_secret: "), std::string::npos) << e;
  EXPECT_EQ(e.find(bad), std::string::npos) << e;
}

TEST(Config, MissingFileIsAnError) {
  EXPECT_THROW(load_config("/nonexistent/zen/cluster.toml"), ConfigError);
}

TEST(ConfigValues, Sizes) {
  EXPECT_EQ(parse_size("6GiB", "k"), uint64_t{6} << 30);
  EXPECT_EQ(parse_size("512MiB", "k"), uint64_t{512} << 20);
  EXPECT_EQ(parse_size(" 1.5 GB ", "k"), 1500000000u);
  EXPECT_EQ(parse_size("4096", "k"), 4096u);
  EXPECT_EQ(parse_size("10kib", "k"), 10240u);
  EXPECT_EQ(parse_size("2TB", "k"), 2000000000000u);
  for (const char* bad : {"", "GiB", "6G", "1e3MiB", "-1GiB", "1.5", "99999999999TiB", "1..5GiB"})
    EXPECT_THROW(parse_size(bad, "k"), ConfigError) << bad;
  EXPECT_EQ(format_size(uint64_t{6} << 30), "6 GiB");
  EXPECT_EQ(format_size(uint64_t{3} << 29), "1.50 GiB");
  EXPECT_EQ(format_size(100), "100 B");
}

TEST(ConfigValues, Durations) {
  EXPECT_EQ(parse_duration("1s", "k"), 1000ms);
  EXPECT_EQ(parse_duration("500ms", "k"), 500ms);
  EXPECT_EQ(parse_duration("2m", "k"), 120000ms);
  EXPECT_EQ(parse_duration("1h", "k"), 3600000ms);
  EXPECT_EQ(parse_duration("1.5s", "k"), 1500ms);
  EXPECT_EQ(parse_duration("0", "k"), 0ms);
  for (const char* bad : {"5", "1d", "s", "-1s", "0.5ms", ""}) EXPECT_THROW(parse_duration(bad, "k"), ConfigError) << bad;
  EXPECT_EQ(format_duration(1000ms), "1s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(600000ms), "10m");
}

TEST(ConfigValues, HostPort) {
  EXPECT_EQ(parse_host_port("node-a:7700", "k"), (HostPort{"node-a", 7700}));
  EXPECT_EQ(parse_host_port("[::1]:80", "k"), (HostPort{"::1", 80}));
  EXPECT_EQ(parse_host_port("10.0.0.5", "k", 7701), (HostPort{"10.0.0.5", 7701}));
  EXPECT_EQ(parse_host_port("h:0", "k"), (HostPort{"h", 0}));
  for (const char* bad : {"", "h", "h:", ":80", "h:x", "h:65536", "::1:80", "[::1", "[::1]x", "a b:1"})
    EXPECT_THROW(parse_host_port(bad, "k"), ConfigError) << bad;
  EXPECT_EQ(parse_layer_split("4, 4,3", "k"), (std::vector<int>{4, 4, 3}));
  EXPECT_THROW(parse_layer_split("4,,3", "k"), ConfigError);
  EXPECT_THROW(parse_layer_split("4,-1", "k"), ConfigError);
}

TEST(ConfigValidate, SpeculativeSettings) {
  NodeConfig c = valid_worker();
  c.role = Role::coordinator;
  c.model = "/m.gguf";
  c.speculative.mode = "lookup";
  EXPECT_EQ(validate_error(c), "");
  c.speculative.mode = "sometimes";
  EXPECT_NE(validate_error(c).find("speculative.mode: 'sometimes'"), std::string::npos);
  c.speculative.mode = "draft";
  EXPECT_NE(validate_error(c).find("needs speculative.draft_model"), std::string::npos);
  c.speculative.draft_model = "/d.gguf";
  EXPECT_EQ(validate_error(c), "");
  c.speculative.max_draft = 0;
  EXPECT_NE(validate_error(c).find("speculative.max_draft"), std::string::npos);
  c = valid_worker();
  c.speculative.mode = "lookup";
  EXPECT_NE(validate_error(c).find("coordinator setting"), std::string::npos);
  const NodeConfig p = parse_config("[speculative]\nmode = \"draft\"\ndraft_model = \"d.gguf\"\nmax_draft = 5\n[limits]\nstep_timeout = \"30s\"\n",
                                    "t", "/base");
  EXPECT_EQ(p.speculative.mode, "draft");
  EXPECT_EQ(p.speculative.draft_model, std::filesystem::path("/base/d.gguf"));
  EXPECT_EQ(p.speculative.max_draft, 5);
  EXPECT_EQ(p.limits.step_timeout, std::chrono::seconds(30));
  EXPECT_THROW(parse_config("[speculative]\nmax_draft = 99\n"), ConfigError);
}

TEST(ConfigValidate, InconsistentSettingsGiveOneClearError) {
  EXPECT_EQ(validate_error(valid_worker()), "");

  NodeConfig c = valid_worker();
  c.cluster_secret.clear();
  EXPECT_NE(validate_error(c).find("no cluster secret"), std::string::npos);
  c = valid_worker();
  c.cluster_secret_file = "/x";
  EXPECT_NE(validate_error(c).find("both set"), std::string::npos);
  c = valid_worker();
  c.role = Role::coordinator;
  EXPECT_NE(validate_error(c).find("needs a model"), std::string::npos);
  c.model = "/m.gguf";
  EXPECT_EQ(validate_error(c), "");
  c = valid_worker();
  c.peers.clear();
  EXPECT_EQ(validate_error(c), "");  // discovery can find the coordinator
  c.discovery.enabled = false;
  EXPECT_NE(validate_error(c).find("find the coordinator"), std::string::npos);
  c = valid_worker();
  c.failure_timeout = c.heartbeat_interval;
  EXPECT_NE(validate_error(c).find("heartbeat.failure_timeout"), std::string::npos);
  c = valid_worker();
  c.memory_budget = 6;
  EXPECT_NE(validate_error(c).find("forget a unit"), std::string::npos);
  c = valid_worker();
  c.api_keys = {"short"};
  EXPECT_NE(validate_error(c).find("api_keys[0]"), std::string::npos);
  EXPECT_EQ(validate_error(c).find("short"), std::string::npos);  // the key itself is not shown
  c = valid_worker();
  c.discovery.targets = {"lan.example"};
  EXPECT_NE(validate_error(c).find("discovery.targets"), std::string::npos);
  c = valid_worker();
  c.layer_split = {2, 2};
  EXPECT_NE(validate_error(c).find("layer_split"), std::string::npos);
  c = valid_worker();
  c.peers = {HostPort{"h", 0}};
  EXPECT_NE(validate_error(c).find("port 0"), std::string::npos);
  c = valid_worker();
  c.name = std::string(65, 'n');
  EXPECT_NE(validate_error(c).find("name"), std::string::npos);
}

TEST(ConfigValidate, DefaultsFollowTheDataDir) {
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  ::setenv("XDG_CACHE_HOME", "/tmp/zen-xdg-test", 1);
  NodeConfig c;
  resolve_defaults(c);
  EXPECT_EQ(c.data_dir, "/tmp/zen-xdg-test/zen");
  EXPECT_EQ(c.key_file, "/tmp/zen-xdg-test/zen/node.key");
  EXPECT_FALSE(c.name.empty());
  NodeConfig d;
  d.data_dir = "/srv/zen";
  resolve_defaults(d);
  EXPECT_EQ(d.key_file, "/srv/zen/node.key");
  if (old) ::setenv("XDG_CACHE_HOME", saved.c_str(), 1);
  else ::unsetenv("XDG_CACHE_HOME");
}

TEST(ConfigDescribe, NeverShowsTheSecretOrApiKeys) {
  NodeConfig c = valid_worker();
  c.role = Role::coordinator;
  c.model = "/m/model.gguf";
  c.api_keys = {"sk-topsecret-123", "another-key-456"};
  c.memory_budget = uint64_t{6} << 30;
  const std::string d = describe(c);
  EXPECT_EQ(d.find(kSecret), std::string::npos) << d;
  EXPECT_EQ(d.find("AAECAwQF"), std::string::npos) << d;
  EXPECT_EQ(d.find("topsecret"), std::string::npos) << d;
  EXPECT_EQ(d.find("another-key"), std::string::npos) << d;
  EXPECT_NE(d.find("secret=inline"), std::string::npos) << d;
  EXPECT_NE(d.find("api_keys=2"), std::string::npos) << d;
  EXPECT_NE(d.find("role=coordinator"), std::string::npos) << d;
  EXPECT_NE(d.find("memory=6 GiB"), std::string::npos) << d;
  EXPECT_NE(d.find("/m/model.gguf"), std::string::npos) << d;
  EXPECT_NE(d.find("peers=[10.0.0.1:7700]"), std::string::npos) << d;
  EXPECT_EQ(d.find('\n'), std::string::npos);  // one log line
}

TEST(ConfigSecret, InlineAndFileGiveTheSameSecret) {
  NodeConfig c = valid_worker();
  const transport::ClusterSecret inline_secret = load_cluster_secret(c);
  EXPECT_EQ(inline_secret.key.bytes[5], 5);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("zen-cfg-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  transport::write_cluster_secret_file(dir / "cluster.secret", inline_secret);
  c.cluster_secret.clear();
  c.cluster_secret_file = dir / "cluster.secret";
  EXPECT_EQ(load_cluster_secret(c).key.bytes, inline_secret.key.bytes);
  c.cluster_secret_file = dir / "missing.secret";
  try {
    (void)load_cluster_secret(c);
    ADD_FAILURE() << "a missing secret file must be an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cluster_secret_file: "), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zen::node
