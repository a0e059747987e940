// zen-node flags: every config key has one, given flags override the file and others leave
// it alone, and the example file and docs/CONFIG.md cover every key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "node/config.h"

namespace zen::node {
namespace {

using namespace std::chrono_literals;

const char* kSecret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

// Every config key and its flag.
const std::map<std::string, std::string> kKeyFlags = {
    {"name", "--name"},
    {"role", "--role"},
    {"listen", "--listen"},
    {"http", "--http"},
    {"data_dir", "--data-dir"},
    {"key_file", "--key-file"},
    {"cluster_secret", "--cluster-secret"},
    {"cluster_secret_file", "--cluster-secret-file"},
    {"model", "--model"},
    {"peers", "--peer"},
    {"allow", "--allow"},
    {"memory", "--memory"},
    {"threads", "--threads"},
    {"activation_type", "--activation-type"},
    {"api_keys", "--api-key"},
    {"layer_split", "--layer-split"},
    {"discovery.enabled", "--discovery"},
    {"discovery.port", "--discovery-port"},
    {"discovery.interval", "--discovery-interval"},
    {"discovery.targets", "--discovery-target"},
    {"limits.max_request_bytes", "--max-request-bytes"},
    {"limits.max_sequences", "--max-sequences"},
    {"limits.max_batch_tokens", "--max-batch-tokens"},
    {"limits.request_timeout", "--request-timeout"},
    {"limits.step_timeout", "--step-timeout"},
    {"speculative.mode", "--lookup"},
    {"speculative.draft_model", "--draft"},
    {"speculative.max_draft", "--spec-k"},
    {"heartbeat.interval", "--heartbeat-interval"},
    {"heartbeat.failure_timeout", "--failure-timeout"},
};

// Parses a command line with the config flags; returns the flags.
ConfigFlags parse_flags(std::vector<std::string> args) {
  CLI::App app("test");
  ConfigFlags f;
  add_config_flags(app, f);
  args.insert(args.begin(), "zen-node");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return f;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ConfigFlags, EveryKeyHasAFlag) {
  CLI::App app("test");
  ConfigFlags f;
  add_config_flags(app, f);
  for (const auto& [key, flag] : kKeyFlags) EXPECT_NO_THROW(app.get_option(flag)) << key << " -> " << flag;
  EXPECT_NO_THROW(app.get_option("--no-discovery"));
  EXPECT_NO_THROW(app.get_option("--config"));
}

TEST(ConfigFlags, ExampleFileAndDocsCoverEveryKey) {
  const std::filesystem::path root(ZEN_SOURCE_DIR);
  const toml::table t = toml::parse_file((root / "cluster.example.toml").string());
  std::set<std::string> in_example;
  for (const auto& [k, v] : t) {
    if (const auto* sub = v.as_table()) {
      for (const auto& [k2, v2] : *sub) in_example.insert(std::string(k.str()) + "." + std::string(k2.str()));
    } else {
      in_example.insert(std::string(k.str()));
    }
  }
  // cluster_secret is shown commented out: exactly one of the two secret keys may be set.
  const std::string example_text = read_text(root / "cluster.example.toml");
  EXPECT_NE(example_text.find("# cluster_secret = "), std::string::npos);
  in_example.insert("cluster_secret");
  // So is the draft model (it needs mode = "draft").
  EXPECT_NE(example_text.find("# draft_model = "), std::string::npos);
  in_example.insert("speculative.draft_model");
  std::set<std::string> all;
  for (const auto& [key, flag] : kKeyFlags) all.insert(key);
  EXPECT_EQ(in_example, all);

  const std::string doc = read_text(root / "docs/CONFIG.md");
  ASSERT_FALSE(doc.empty()) << "docs/CONFIG.md is missing";
  for (const auto& [key, flag] : kKeyFlags) {
    const std::string leaf = key.substr(key.find('.') == std::string::npos ? 0 : key.find('.') + 1);
    EXPECT_NE(doc.find("`" + leaf + "`"), std::string::npos) << key << " is not documented";
    EXPECT_NE(doc.find("`" + flag), std::string::npos) << flag << " is not documented";
  }
}

TEST(ConfigFlags, GivenFlagsOverrideTheFileOthersLeaveItAlone) {
  NodeConfig c = parse_config(R"(
name = "from-file"
role = "worker"
peers = ["10.0.0.1:7700"]
threads = 2
cluster_secret = ")" + std::string(kSecret) + R"("
[heartbeat]
interval = "2s"
failure_timeout = "6s"
)",
                              "t.toml");
  const ConfigFlags f = parse_flags({"--name", "from-flag", "--peer", "a:1", "--peer", "b:2,c:3", "--memory", "512MiB",
                                     "--no-discovery", "--failure-timeout", "10s", "--http", "", "--activation-type",
                                     "f16", "--discovery-target", "127.0.0.1:9000"});
  apply_flags(f, c);
  EXPECT_EQ(c.name, "from-flag");
  ASSERT_EQ(c.peers.size(), 3u);
  EXPECT_EQ(c.peers[0], (HostPort{"a", 1}));
  EXPECT_EQ(c.peers[2], (HostPort{"c", 3}));
  EXPECT_EQ(c.memory_budget, uint64_t{512} << 20);
  EXPECT_FALSE(c.discovery.enabled);
  EXPECT_EQ(c.failure_timeout, 10s);
  EXPECT_FALSE(c.http.has_value());
  EXPECT_EQ(c.activation_type, ActivationType::f16);
  EXPECT_EQ(c.discovery.targets, std::vector<std::string>{"127.0.0.1:9000"});
  // Not given: the file's values stay.
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.heartbeat_interval, 2s);
  EXPECT_EQ(c.cluster_secret, kSecret);
  EXPECT_EQ(c.role, Role::worker);

  apply_flags(parse_flags({"--discovery", "--threads", "5", "--role", "coordinator", "-m", "/m.gguf", "--max-batch-tokens", "32"}), c);
  EXPECT_EQ(c.limits.max_batch_tokens, 32);
  EXPECT_TRUE(c.discovery.enabled);
  EXPECT_EQ(c.threads, 5);
  EXPECT_EQ(c.role, Role::coordinator);
  EXPECT_EQ(c.model, "/m.gguf");
}

TEST(ConfigFlags, SecretFlagReplacesTheFileSecret) {
  NodeConfig c = parse_config("cluster_secret = \"" + std::string(kSecret) + "\"", "t.toml");
  apply_flags(parse_flags({"--cluster-secret-file", "/etc/zen/secret"}), c);
  EXPECT_TRUE(c.cluster_secret.empty());
  EXPECT_EQ(c.cluster_secret_file, "/etc/zen/secret");
  apply_flags(parse_flags({"--cluster-secret", kSecret}), c);
  EXPECT_EQ(c.cluster_secret, kSecret);
  EXPECT_TRUE(c.cluster_secret_file.empty());
  EXPECT_THROW(apply_flags(parse_flags({"--cluster-secret", kSecret, "--cluster-secret-file", "/x"}), c), ConfigError);
  try {
    apply_flags(parse_flags({"--cluster-secret", "c2hvcnQ="}), c);
    ADD_FAILURE() << "a short secret must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--cluster-secret"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("c2hvcnQ="), std::string::npos);
  }
}

TEST(ConfigFlags, BadFlagValuesNameTheFlag) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{"--role", "boss"}, "--role: "},
      {{"--memory", "6"}, ""},  // parses (6 bytes); validate() catches it
      {{"--memory", "6 GB please"}, "--memory: "},
      {{"--peer", "nohost"}, "--peer: "},
      {{"--listen", "x:99999"}, "--listen: "},
      {{"--layer-split", "4,x"}, "--layer-split: "},
      {{"--heartbeat-interval", "1"}, "--heartbeat-interval: "},
      {{"--allow", "zzz"}, "--allow: "},
      {{"--threads", "-1"}, "--threads: "},
      {{"--discovery-port", "0"}, "--discovery-port: "},
      {{"--max-batch-tokens", "0"}, "--max-batch-tokens: "},
  };
  for (const auto& [args, want] : cases) {
    NodeConfig c;
    std::string err;
    try {
      apply_flags(parse_flags(args), c);
    } catch (const ConfigError& e) {
      err = e.what();
    }
    if (*want == '\0') {
      EXPECT_EQ(err, "") << args[0];
    } else {
      EXPECT_NE(err.find(want), std::string::npos) << args[0] << " " << args[1] << " -> " << err;
    }
  }
}

TEST(ConfigFlags, ConfigFromFlagsLoadsOverridesResolvesAndValidates) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("zen-cfgflags-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "node.toml");
    out << "role = \"worker\"\ndata_dir = \"cache\"\ncluster_secret = \"" << kSecret << "\"\n[discovery]\nenabled = false\n";
  }
  ConfigFlags f = parse_flags({"--config", (dir / "node.toml").string(), "--name", "w1"});
  // A worker without peers and without discovery: validate() refuses.
  try {
    (void)config_from_flags(f);
    ADD_FAILURE() << "expected a validation error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("find the coordinator"), std::string::npos) << e.what();
  }
  f = parse_flags({"--config", (dir / "node.toml").string(), "--name", "w1", "--peer", "127.0.0.1:7700"});
  const NodeConfig c = config_from_flags(f);
  EXPECT_EQ(c.name, "w1");
  EXPECT_EQ(c.data_dir, dir / "cache");         // relative to the file's folder
  EXPECT_EQ(c.key_file, dir / "cache" / "node.key");  // derived from the data dir
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zen::node
