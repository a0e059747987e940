// sim/: topology files. A topology names the devices (memory, weight-streaming bandwidth, compute),
// the links between them and the model; it becomes the planner's Cluster and ModelCost so the
// simulator and `zen plan` share one cost model.
//
//   coordinator = "laptop"            # optional; default: the first device
//   [model]
//   preset = "llama-3-70b"            # or path = "model.gguf" (relative to the topology file)
//   quant = "q4_K_M"                  # with preset: q4_K_M | q8_0 | f16
//   # or synth = "n_layer=8,n_embd=512,type=q4_K_M"  (a random-weight GGUF, made once; see below)
//   [[device]]
//   name = "laptop"
//   preset = "m2-max-64gb"            # optional; the keys below override it
//   memory = "48GiB"  mem_bw_gbs = 240  flops = 1e12  threads = 8  overhead = "50us"
//   [default_link]                    # every pair without its own [[link]]
//   latency = "3ms"  bandwidth = "100Mbit"  loss = 0.001
//   [[link]]
//   a = "laptop"  b = "phone"  latency = "5ms"  bandwidth = "50Mbit"  loss = 0.01
//
// Unknown keys and bad values throw TopologyError naming the key and its line.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "partition/partition.h"

namespace zen::sim {

class TopologyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Topology {
  partition::Cluster cluster;      // devices in file order, links for every pair, coordinator
  std::vector<int> threads;        // per device, as written (0: not given); informative only
  partition::ModelCost model;
  std::string model_name;          // "llama-3-70b q4_K_M" or the GGUF path
  uint64_t model_bytes = 0;        // every weight: layers + embeddings + head
  std::filesystem::path model_path;  // the GGUF (path or synth); empty for a preset
};

// [model] synth = "n_layer=8,n_embd=512,n_ff=1536,n_head=8,n_head_kv=4,vocab=2048,type=q4_K_M,seed=1":
// a random-weight model of that shape (engine::write_synth_model; keys left out keep its
// defaults), written once to the temp folder under a name derived from the text; returns its path.
std::filesystem::path synth_model_file(std::string_view spec, std::string_view key);

Topology parse_topology(std::string_view toml_text, std::string_view origin = "topology",
                        const std::filesystem::path& base_dir = {});
Topology load_topology(const std::filesystem::path& path);

// ---- presets ------------------------------------------------------------------------------------

// Architectures with published shapes: "llama-3-70b", "qwen3-32b", "llama-3-8b", "mistral-7b",
// "llama-3.2-1b"; quant "q4_K_M", "q8_0" or "f16". KV cache f16, activations f32 on the wire.
partition::ModelCost preset_model(std::string_view preset, std::string_view quant);
std::vector<std::string> model_preset_names();
// "m2-max-64gb", "m2-air-16gb", "phone-8gb", "rpi5-8gb", "desktop-ddr5-32gb".
partition::Device preset_device(std::string_view preset);
std::vector<std::string> device_preset_names();
// Sum of every weight byte of a cost model.
uint64_t model_weight_bytes(const partition::ModelCost& m);

// "100Mbit", "1Gbit", "12.5MB/s", "1GiB/s" -> payload bytes per second.
double parse_bandwidth(std::string_view text, std::string_view key);
// "2ms", "500us", "0.1s", "0" -> seconds.
double parse_seconds(std::string_view text, std::string_view key);

}  // namespace zen::sim
