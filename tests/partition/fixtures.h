// Made-up models and clusters for the planner tests.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "partition/partition.h"

namespace zen::partition::fixtures {

inline constexpr uint64_t kMiB = 1ull << 20;
inline constexpr uint64_t kGiB = 1ull << 30;

// n identical layers; embeddings half a layer, head one layer; f32 hidden states of 4096 values.
inline ModelCost uniform_model(int n_layers, uint64_t layer_bytes, double layer_flops, uint64_t kv_per_token = 0) {
  ModelCost m;
  m.layers.assign(static_cast<size_t>(n_layers), LayerCost{layer_bytes, layer_flops, kv_per_token});
  m.embed_bytes = layer_bytes / 2;
  m.head_bytes = layer_bytes;
  m.head_flops_per_token = layer_flops;
  m.hidden_bytes_per_token = 4096 * 4;
  return m;
}

inline Device device(std::string name, uint64_t mem_bytes, double bw_gbs, double flops, double overhead_s = 0) {
  Device d;
  d.name = std::move(name);
  d.mem_bytes = mem_bytes;
  d.mem_bw_gbs = bw_gbs;
  d.flops = flops;
  d.overhead_s = overhead_s;
  return d;
}

// Every pair joined by the same link.
inline Cluster mesh(std::vector<Device> devices, Link link, int coordinator = 0) {
  Cluster c;
  c.devices = std::move(devices);
  c.links.assign(c.devices.size(), std::vector<Link>(c.devices.size(), link));
  c.coordinator = coordinator;
  return c;
}

inline void set_link(Cluster& c, int a, int b, Link link) {
  c.links[static_cast<size_t>(a)][static_cast<size_t>(b)] = link;
  c.links[static_cast<size_t>(b)][static_cast<size_t>(a)] = link;
}

inline PlanOptions options(int n_streams = 4, uint64_t kv_tokens = 1024) {
  PlanOptions o;
  o.n_streams = n_streams;
  o.kv_tokens = kv_tokens;
  return o;
}

inline uint64_t sum_weights(const ModelCost& m) {
  uint64_t s = 0;
  for (const LayerCost& l : m.layers) s += l.weight_bytes;
  return s;
}

inline uint64_t sum_kv(const ModelCost& m) {
  uint64_t s = 0;
  for (const LayerCost& l : m.layers) s += l.kv_bytes_per_token;
  return s;
}

inline double sum_flops(const ModelCost& m) {
  double s = 0;
  for (const LayerCost& l : m.layers) s += l.flops_per_token;
  return s;
}

}  // namespace zen::partition::fixtures
