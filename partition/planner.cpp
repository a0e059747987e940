// plan() and its two baselines; what to say when nothing fits.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>

#include "partition/search.h"

namespace zen::partition {

namespace {

using detail::Coster;
using detail::Piece;

// Stages, prediction and memory verdict for a list of slices.
Plan assemble(const Coster& k, const Cluster& c, const std::vector<Piece>& pieces) {
  Plan p;
  for (const Piece& piece : pieces) p.stages.push_back(detail::make_stage_with(k, piece.device, piece.first, piece.end));
  p.prediction = detail::predict_with(k, p.stages);
  p.why_not = memory_shortfall(c, p.stages, k.options());
  p.fits = p.why_not.empty();
  return p;
}

// devices[i] takes counts[i] consecutive layers; devices with no layers are left out.
std::vector<Piece> pieces_from_counts(const std::vector<int>& devices, const std::vector<int>& counts) {
  std::vector<Piece> pieces;
  int first = 0;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (counts[i] == 0) continue;
    pieces.push_back({devices[i], first, first + counts[i]});
    first += counts[i];
  }
  return pieces;
}

// n_layers split in proportion to the weights, largest remainders rounded up.
std::vector<int> proportional_counts(const std::vector<double>& weights, int n_layers) {
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<int> counts(weights.size(), 0);
  std::vector<std::pair<double, size_t>> remainders;
  int given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double share = total > 0 ? n_layers * weights[i] / total : static_cast<double>(n_layers) / weights.size();
    counts[i] = static_cast<int>(share);
    given += counts[i];
    remainders.push_back({share - counts[i], i});
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t r = 0; given < n_layers; r = (r + 1) % remainders.size(), ++given) ++counts[remainders[r].second];
  return counts;
}

// The devices a baseline uses: the forced order, else every device in cluster order.
std::vector<int> baseline_devices(const Cluster& c, const PlanOptions& o) {
  if (!o.forced_order) {
    std::vector<int> all(c.devices.size());
    std::iota(all.begin(), all.end(), 0);
    return all;
  }
  const std::vector<int>& order = *o.forced_order;
  if (order.empty()) throw std::invalid_argument("partition: forced_order is empty");
  std::vector<bool> seen(c.devices.size(), false);
  for (int d : order) {
    if (d < 0 || static_cast<size_t>(d) >= c.devices.size())
      throw std::invalid_argument("partition: forced_order names device " + std::to_string(d) +
                                  ", which is not in the cluster");
    if (seen[static_cast<size_t>(d)])
      throw std::invalid_argument("partition: forced_order names device " + std::to_string(d) + " twice");
    seen[static_cast<size_t>(d)] = true;
  }
  return order;
}

std::vector<Piece> memory_proportional_pieces(const Coster& k, const std::vector<int>& devices) {
  std::vector<double> weights;
  for (int d : devices) weights.push_back(static_cast<double>(k.usable(d)));
  return pieces_from_counts(devices, proportional_counts(weights, k.n_layers()));
}

// When no split fits: the shortfall in total, then the closest try with each device's shortfall.
Plan not_fitting(const Coster& k, const Cluster& c, const PlanOptions& o) {
  std::vector<int> devices = baseline_devices(c, o);
  uint64_t usable = 0;
  for (int d : devices) usable = k.usable(d) > UINT64_MAX - usable ? UINT64_MAX : usable + k.usable(d);
  const uint64_t need = k.stage_mem(0, k.n_layers());
  const std::string whose = o.forced_order ? "the forced devices" : "all devices";
  const std::string reserve = std::to_string(static_cast<int>(o.mem_reserve_frac * 100 + 0.5)) + "% reserve";
  std::string why;
  if (usable < need) {
    why = "the model needs at least " + format_bytes(need) + " (weights, KV cache for " + std::to_string(o.n_streams) +
          " streams x " + std::to_string(o.kv_tokens) + " tokens, stage overhead) but " + whose + " together have " +
          format_bytes(usable) + " usable after the " + reserve + ": short by " + format_bytes(need - usable);
  } else {
    why = std::string("no split into contiguous layer slices fits") +
          (o.forced_layers_per_stage ? " with the forced layer counts" : "") + " although " + whose + " together have " +
          format_bytes(usable) + " usable for " + format_bytes(need);
  }

  std::vector<Piece> closest;
  std::string label = "memory-proportional split";
  if (o.forced_layers_per_stage) {
    // The forced counts on the forced devices, or else on the devices with the most memory.
    const std::vector<int>& counts = *o.forced_layers_per_stage;
    if (!o.forced_order) {
      std::stable_sort(devices.begin(), devices.end(), [&](int a, int b) { return k.usable(a) > k.usable(b); });
      devices.resize(std::min(devices.size(), counts.size()));
      std::sort(devices.begin(), devices.end());
    }
    closest = pieces_from_counts(devices, counts);
    label = "forced split";
  } else {
    closest = memory_proportional_pieces(k, devices);
  }
  Plan p = assemble(k, c, closest);
  if (!p.why_not.empty()) why += "; on the " + label + ": " + p.why_not;
  p.fits = false;
  p.why_not = why;
  return p;
}

}  // namespace

Plan plan(const ModelCost& m, const Cluster& c, const PlanOptions& o) {
  const Coster k(m, c, o);
  const detail::Boundaries bounds(o, k.n_layers());
  const size_t n_forced = o.forced_layers_per_stage ? o.forced_layers_per_stage->size() : 0;
  detail::Found found;
  if (o.forced_order) {
    const std::vector<int> order = baseline_devices(c, o);
    if (n_forced != 0 && n_forced != order.size())
      throw std::invalid_argument("partition: forced_order has " + std::to_string(order.size()) +
                                  " devices but forced_layers_per_stage has " + std::to_string(n_forced) + " stages");
    found = detail::search_order(k, bounds, order, true);
  } else if (n_forced > c.devices.size()) {
    throw std::invalid_argument("partition: forced_layers_per_stage has " + std::to_string(n_forced) +
                                " stages but the cluster has " + std::to_string(c.devices.size()) + " devices");
  } else if (k.n_devices() <= o.exact_max_devices && detail::subsets_affordable(k.n_devices(), k.n_layers())) {
    found = detail::search_subsets(k, bounds);
  } else {
    found = detail::search_heuristic(k, bounds);
  }
  if (found.pieces.empty()) return not_fitting(k, c, o);
  return assemble(k, c, found.pieces);
}

Plan plan_even(const ModelCost& m, const Cluster& c, const PlanOptions& o) {
  const Coster k(m, c, o);
  std::vector<int> devices = baseline_devices(c, o);
  devices.resize(std::min(devices.size(), static_cast<size_t>(k.n_layers())));
  return assemble(k, c, pieces_from_counts(devices, proportional_counts(std::vector<double>(devices.size(), 1.0),
                                                                         k.n_layers())));
}

Plan plan_memory_proportional(const ModelCost& m, const Cluster& c, const PlanOptions& o) {
  const Coster k(m, c, o);
  return assemble(k, c, memory_proportional_pieces(k, baseline_devices(c, o)));
}

}  // namespace zen::partition
