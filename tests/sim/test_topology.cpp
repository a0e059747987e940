// Topology files: parsing, presets, errors that name the key and line.
#include <gtest/gtest.h>

#include <filesystem>

#include "sim/topology.h"

namespace zen::sim {
namespace {

const char* kSmall = R"(
coordinator = "b"
[model]
preset = "llama-3.2-1b"
quant = "q8_0"
[[device]]
name = "a"
memory = "2GiB"
mem_bw_gbs = 40
flops = 2e11
threads = 4
[[device]]
name = "b"
preset = "rpi5-8gb"
memory = "3GiB"
[default_link]
latency = "2ms"
bandwidth = "100Mbit"
loss = 0.01
)";

TEST(Topology, ParsesDevicesLinksAndModel) {
  const Topology t = parse_topology(kSmall);
  ASSERT_EQ(t.cluster.devices.size(), 2u);
  EXPECT_EQ(t.cluster.coordinator, 1);
  EXPECT_EQ(t.cluster.devices[0].mem_bytes, 2ull << 30);
  EXPECT_DOUBLE_EQ(t.cluster.devices[0].mem_bw_gbs, 40);
  EXPECT_EQ(t.threads[0], 4);
  // the preset gives bandwidth and compute; memory overrides it
  EXPECT_EQ(t.cluster.devices[1].mem_bytes, 3ull << 30);
  EXPECT_DOUBLE_EQ(t.cluster.devices[1].mem_bw_gbs, preset_device("rpi5-8gb").mem_bw_gbs);
  ASSERT_EQ(t.cluster.links.size(), 2u);
  EXPECT_DOUBLE_EQ(t.cluster.links[0][1].latency_s, 0.002);
  EXPECT_DOUBLE_EQ(t.cluster.links[1][0].bandwidth_bytes_s, 100e6 / 8);
  EXPECT_DOUBLE_EQ(t.cluster.links[0][1].loss, 0.01);
  EXPECT_EQ(t.model.layers.size(), 16u);
  EXPECT_EQ(t.model_name, "llama-3.2-1b q8_0");
}

TEST(Topology, ExplicitLinkOverridesDefault) {
  const Topology t = parse_topology(std::string(kSmall) + "[[link]]\na = \"a\"\nb = \"b\"\nbandwidth = \"1Gbit\"\n");
  EXPECT_DOUBLE_EQ(t.cluster.links[0][1].bandwidth_bytes_s, 1e9 / 8);
  EXPECT_DOUBLE_EQ(t.cluster.links[1][0].bandwidth_bytes_s, 1e9 / 8);
  EXPECT_DOUBLE_EQ(t.cluster.links[0][1].latency_s, 0);
}

void expect_error(const std::string& text, const std::string& needle) {
  try {
    parse_topology(text, "t.toml");
    FAIL() << "no error for: " << text;
  } catch (const TopologyError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Topology, ErrorsNameKeyAndLine) {
  std::string bad = kSmall;
  bad.replace(bad.find("threads = 4"), 11, "thread = 4");
  expect_error(bad, "t.toml:11: unknown key 'device.thread'");
  expect_error("colour = 1\n" + std::string(kSmall), "t.toml:1: unknown key 'colour'");
  expect_error(std::string(kSmall) + "colour = 1\n", "t.toml:20: unknown key 'default_link.colour'");
  std::string bad_unit = kSmall;
  bad_unit.replace(bad_unit.find("\"2ms\""), 5, "\"2 parsecs\"");
  expect_error(bad_unit, "t.toml:17: default_link.latency: unknown unit");
  std::string bad_bw = kSmall;
  bad_bw.replace(bad_bw.find("\"100Mbit\""), 9, "\"fast\"");
  expect_error(bad_bw, "default_link.bandwidth");
  std::string bad_loss = kSmall;
  bad_loss.replace(bad_loss.find("0.01"), 4, "1.5");
  expect_error(bad_loss, "loss: must be in [0, 1)");
  std::string bad_preset = kSmall;
  bad_preset.replace(bad_preset.find("rpi5-8gb"), 8, "toaster");
  expect_error(bad_preset, "t.toml:14: unknown device preset 'toaster'");
  std::string bad_model = kSmall;
  bad_model.replace(bad_model.find("q8_0"), 4, "q3_K");
  expect_error(bad_model, "unknown quant 'q3_K'");
  expect_error(std::string(kSmall) + "[[link]]\na = \"a\"\nb = \"zz\"\nbandwidth = \"1Gbit\"\n", "names no known device: 'zz'");
  std::string no_default = kSmall;
  no_default.erase(no_default.find("[default_link]"));
  expect_error(no_default, "no link between 'a' and 'b'");
  expect_error("[model]\npreset = \"llama-3-8b\"\n", "no [[device]]");
  expect_error("[[device]]\nname = \"x\"\nmemory = \"1GiB\"\nmem_bw_gbs = 1\nflops = 1\n", "no [model]");
  expect_error("[model\n", "TOML syntax error");
}

TEST(Topology, UnitParsers) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("12.5MB/s", "k"), 12.5e6);
  EXPECT_DOUBLE_EQ(parse_bandwidth("1Gbit", "k"), 1.25e8);
  EXPECT_DOUBLE_EQ(parse_seconds("500us", "k"), 5e-4);
  EXPECT_DOUBLE_EQ(parse_seconds("0", "k"), 0);
  EXPECT_THROW(parse_seconds("5", "k"), TopologyError);  // the unit must be said
  EXPECT_THROW(parse_seconds("-1ms", "k"), TopologyError);
}

TEST(Presets, SizedFromPublishedShapes) {
  const double gib = double(1ull << 30);
  // Llama-3-70B: ~70.6e9 parameters; at ~4.85 bits/weight about 40 GiB.
  const double b70 = double(model_weight_bytes(preset_model("llama-3-70b", "q4_K_M"))) / gib;
  EXPECT_GT(b70, 38.5);
  EXPECT_LT(b70, 41.5);
  // Llama-3-8B: 8.03e9 parameters; f16 = 16.06 GB = 14.96 GiB; q8_0 = 8.5/16 of that.
  const double b8 = double(model_weight_bytes(preset_model("llama-3-8b", "f16"))) / gib;
  EXPECT_NEAR(b8, 8.03e9 * 2 / gib, 0.1);
  const double b8q = double(model_weight_bytes(preset_model("llama-3-8b", "q8_0"))) / gib;
  EXPECT_NEAR(b8q / b8, 8.5 / 16, 0.01);
  // Llama-3.2-1B ties its embeddings: 1.24e9 parameters counted once.
  const double b1 = double(model_weight_bytes(preset_model("llama-3.2-1b", "f16")));
  EXPECT_NEAR(b1 / 1e9, 1.24 * 2, 0.05);
  // Qwen3-32B: 32.8e9 parameters.
  EXPECT_NEAR(double(model_weight_bytes(preset_model("qwen3-32b", "f16"))) / 1e9, 32.8 * 2, 1.0);
  // KV: 80 layers x 2 x 8 heads x 128 x f16 = 320 KiB per token for the 70B.
  uint64_t kv = 0;
  for (const auto& l : preset_model("llama-3-70b", "q4_K_M").layers) kv += l.kv_bytes_per_token;
  EXPECT_EQ(kv, 80u * 2 * 8 * 128 * 2);
  EXPECT_THROW(preset_model("gpt-5", "f16"), TopologyError);
}

TEST(Presets, DevicesBelowPublishedPeak) {
  EXPECT_LT(preset_device("m2-max-64gb").mem_bw_gbs, 400);
  EXPECT_GT(preset_device("m2-max-64gb").mem_bw_gbs, 200);
  EXPECT_LT(preset_device("rpi5-8gb").mem_bw_gbs, 17);
  for (const auto& n : device_preset_names()) {
    const auto d = preset_device(n);
    EXPECT_GT(d.mem_bytes, 1ull << 30) << n;
    EXPECT_GT(d.flops, 0) << n;
  }
}

TEST(Topology, ShippedFilesParse) {
  for (const char* f : {"seed-70b-wifi.toml", "two-phones-7b.toml", "synthetic-small.toml"}) {
    const Topology t = load_topology(std::string(ZEN_SOURCE_DIR) + "/sim/topologies/" + f);
    EXPECT_GE(t.cluster.devices.size(), 2u) << f;
  }
  EXPECT_THROW(load_topology("/nonexistent/topology.toml"), TopologyError);
}

}  // namespace
}  // namespace zen::sim

namespace zen::sim {
namespace {

// [model] path = a GGUF: sizes come from the file's tensors (the file is never loaded for compute).
TEST(Topology, ModelFromGguf) {
  const std::filesystem::path gguf = std::filesystem::path(ZEN_TESTDATA_DIR) / "models" / "synth-llama-F32.gguf";
  if (!std::filesystem::exists(gguf)) GTEST_SKIP() << "reference data missing: " << gguf;
  const std::string text = "[model]\npath = \"" + gguf.string() +
                           "\"\n[[device]]\nname = \"d\"\nmemory = \"1GiB\"\nmem_bw_gbs = 10\nflops = 1e10\n";
  const Topology t = parse_topology(text);
  EXPECT_EQ(t.model_name, gguf.string());
  ASSERT_FALSE(t.model.layers.empty());
  // F32 weights: the planner's byte count is within the file's size and most of it.
  const double file = double(std::filesystem::file_size(gguf));
  EXPECT_LE(double(t.model_bytes), file);
  EXPECT_GT(double(t.model_bytes), 0.8 * file);
  // a relative path resolves against the topology file's folder
  const Topology rel = parse_topology("[model]\npath = \"synth-llama-F32.gguf\"\n[[device]]\nname = \"d\"\n"
                                      "memory = \"1GiB\"\nmem_bw_gbs = 10\nflops = 1e10\n",
                                      "t.toml", gguf.parent_path());
  EXPECT_EQ(rel.model.layers.size(), t.model.layers.size());
  try {
    parse_topology("[model]\npath = \"/nonexistent.gguf\"\n[[device]]\nname = \"d\"\nmemory = \"1GiB\"\n"
                   "mem_bw_gbs = 10\nflops = 1e10\n",
                   "t.toml");
    FAIL() << "no error for a missing GGUF";
  } catch (const TopologyError& e) {
    EXPECT_NE(std::string(e.what()).find("t.toml:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_topology("[model]\npreset = \"llama-3-8b\"\npath = \"x.gguf\"\n[[device]]\nname = \"d\"\n"
                              "memory = \"1GiB\"\nmem_bw_gbs = 10\nflops = 1e10\n"),
               TopologyError);
}

}  // namespace
}  // namespace zen::sim

#include "node/config.h"

namespace zen::sim {
namespace {

TEST(Topology, SynthSpecErrorsNameTheKey) {
  EXPECT_THROW(synth_model_file("n_layer=8,bogus=1", "model.synth"), TopologyError);
  EXPECT_THROW(synth_model_file("n_layer=zero", "model.synth"), TopologyError);
  EXPECT_THROW(synth_model_file("n_layer", "model.synth"), TopologyError);
  EXPECT_THROW(synth_model_file("n_embd=100,n_head=8", "model.synth"), TopologyError);
  EXPECT_THROW(synth_model_file("type=q9_X", "model.synth"), TopologyError);
  try {
    synth_model_file("n_layer=8,bogus=1", "model.synth");
  } catch (const TopologyError& e) {
    EXPECT_NE(std::string(e.what()).find("bogus"), std::string::npos) << e.what();
  }
}

TEST(BenchShape, ParsesPeerOrAnyAndRefusesBadFields) {
  const auto any = node::parse_bench_shape("*:0.002:12500000:0.01", "--bench-shape");
  EXPECT_FALSE(any.peer.has_value());
  EXPECT_DOUBLE_EQ(any.shape.latency_s, 0.002);
  EXPECT_DOUBLE_EQ(any.shape.bandwidth_bytes_s, 12.5e6);
  EXPECT_DOUBLE_EQ(any.shape.loss, 0.01);
  const std::string key = transport::format_public_key(transport::generate_keypair().public_key);
  const auto one = node::parse_bench_shape(key + ":0:0:0", "--bench-shape");
  ASSERT_TRUE(one.peer.has_value());
  EXPECT_EQ(transport::format_public_key(*one.peer), key);
  for (const char* bad : {"*:0.002:1e6", "*:x:1e6:0", "*:0.002:1e6:1", "*:-1:1e6:0", "notakey:0:0:0", "*:1:2:0:5"})
    EXPECT_THROW(node::parse_bench_shape(bad, "--bench-shape"), node::ConfigError) << bad;
}

}  // namespace
}  // namespace zen::sim
