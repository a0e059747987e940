// Private to partition/: the cost model in O(1) per question, shared by predict() and the planner.
#pragma once

#include <string>
#include <vector>

#include "partition/partition.h"

namespace zen::partition::detail {

// Throws std::invalid_argument naming the first thing wrong with the inputs.
void validate(const ModelCost&, const Cluster&, const PlanOptions&);
// Throws std::invalid_argument unless the stages are contiguous slices covering every layer once,
// on distinct valid devices.
void validate_stages(const ModelCost&, const Cluster&, const std::vector<Stage>&);
// Throws unless `device` is in the cluster and [first, end) is a non-empty range of the model's layers.
// `which` prefixes the message ("stage 2: ").
void validate_slice(const Cluster&, int n_layers, int device, int first, int end, const std::string& which = "");

// One step of a stage split into the terms the bottleneck report names.
struct StepTerms {
  double memory_s = 0;    // bytes / bandwidth
  double compute_s = 0;   // flops / rate
  double overhead_s = 0;  // fixed per step
  double total() const { return (memory_s > compute_s ? memory_s : compute_s) + overhead_s; }
};

// Prefix sums over the layers and the links' per-token message times, so that every question the
// planner asks about a slice costs O(1). Constructing one validates the inputs.
class Coster {
 public:
  Coster(const ModelCost&, const Cluster&, const PlanOptions&);

  int n_layers() const { return n_layers_; }
  int n_devices() const { return static_cast<int>(cluster_.devices.size()); }
  int coordinator() const { return cluster_.coordinator; }
  const Cluster& cluster() const { return cluster_; }
  const Device& device(int d) const { return cluster_.devices[static_cast<size_t>(d)]; }
  const PlanOptions& options() const { return opts_; }

  // Memory a stage holding layers [first, end) needs; the same on every device.
  uint64_t stage_mem(int first, int end) const;
  uint64_t usable(int d) const { return usable_[static_cast<size_t>(d)]; }
  bool fits(int d, int first, int end) const { return stage_mem(first, end) <= usable(d); }

  StepTerms step_terms(int d, int first, int end, int batch) const;
  double step_s(int d, int first, int end, int batch) const {
    return step_terms(d, first, end, batch).total();
  }
  double prefill_s(int d, int first, int end, int tokens) const;

  // Hidden states of `tokens` tokens from one stage's device to the next one's.
  double hidden_hop_s(int from, int to, int tokens) const;
  double hidden_busy_s(int from, int to, int tokens) const;
  // Token ids between the coordinator and a stage.
  double token_hop_s(int from, int to, int tokens) const;
  double token_busy_s(int from, int to, int tokens) const;
  // The same for a single token, precomputed: what the planner's search uses.
  double hidden_hop1(int from, int to) const { return hidden1_[pair(from, to)]; }
  double hidden_busy1(int from, int to) const { return hidden_busy1_[pair(from, to)]; }
  double token_hop1(int from, int to) const { return token1_[pair(from, to)]; }

 private:
  size_t pair(int from, int to) const {
    return static_cast<size_t>(from) * cluster_.devices.size() + static_cast<size_t>(to);
  }

  const ModelCost& model_;
  const Cluster& cluster_;
  const PlanOptions& opts_;
  int n_layers_ = 0;
  std::vector<uint64_t> weight_prefix_;  // [n_layer + 1]
  std::vector<uint64_t> kv_prefix_;      // [n_layer + 1]
  std::vector<double> flops_prefix_;     // [n_layer + 1]
  uint64_t kv_multiplier_ = 0;           // kv_tokens * n_streams
  double decode_context_ = 0;            // average context a decode step attends over
  std::vector<uint64_t> usable_;         // [n_devices]
  std::vector<double> hidden1_, hidden_busy1_, token1_;  // [n_devices * n_devices]
};

// predict() and make_stage() without validating again.
Prediction predict_with(const Coster&, const std::vector<Stage>&);
Stage make_stage_with(const Coster&, int device, int first_layer, int end_layer);

}  // namespace zen::partition::detail
