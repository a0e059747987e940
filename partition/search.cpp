// Dynamic programs over (devices used, last device, layers placed) that find the split with the
// smallest one-stream token time. A stage's cost depends only on its device and layer range, and a
// hop's only on the two devices, so a prefix of the pipeline can be summarised by where it ends.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>

#include "partition/search.h"

namespace zen::partition::detail {

namespace {

constexpr int32_t kNone = -1;   // no way to reach this state
constexpr int32_t kStart = -2;  // the state's stage is the pipeline's first

// The score after appending a stage on `d` holding layers [first, end) to a pipeline whose last stage
// is on `prev` (-1: the new stage is the first, fed by the coordinator).
Score extend(const Coster& k, const Score& s, int prev, int d, int first, int end) {
  const double step = k.step_s(d, first, end, 1);
  Score r;
  r.token_s = s.token_s + step;
  r.worst_s = std::max(s.worst_s, step);
  if (prev < 0) {
    r.token_s += k.token_hop1(k.coordinator(), d);
  } else {
    r.token_s += k.hidden_hop1(prev, d);
    r.worst_s = std::max(r.worst_s, k.hidden_busy1(prev, d));
  }
  if (end == k.n_layers()) r.token_s += k.token_hop1(d, k.coordinator());
  return r;
}

// Tries every allowed end for a stage on `d` from layer `first`, keeping the better score per end.
// `row` and `from_row` are indexed by the end layer; `code` records where the state came from.
void relax(const Coster& k, const Boundaries& b, const Score& base, int prev, int d, int first, Score* row,
           int32_t* from_row, int32_t code) {
  const int hi = b.highest_end(first);
  // Memory grows with the slice, so the first end that does not fit ends the scan.
  for (int end = b.lowest_end(first); end <= hi && k.fits(d, first, end); ++end) {
    const Score s = extend(k, base, prev, d, first, end);
    if (better(s, row[end])) {
      row[end] = s;
      from_row[end] = code;
    }
  }
}

double whole_model_s(const Coster& k, int d) { return k.step_s(d, 0, k.n_layers(), 1); }

// Candidate orders for a large cluster: fastest devices first; a nearest-neighbour chain from the
// coordinator over the links; the cluster's own order.
std::vector<std::vector<int>> candidate_orders(const Coster& k) {
  const int n = k.n_devices();
  std::vector<int> by_index(static_cast<size_t>(n));
  std::iota(by_index.begin(), by_index.end(), 0);

  std::vector<int> by_speed = by_index;
  std::stable_sort(by_speed.begin(), by_speed.end(),
                   [&](int a, int b) { return whole_model_s(k, a) < whole_model_s(k, b); });

  std::vector<int> chain{k.coordinator()};
  std::vector<bool> used(static_cast<size_t>(n), false);
  used[static_cast<size_t>(k.coordinator())] = true;
  while (static_cast<int>(chain.size()) < n) {
    int pick = -1;
    for (int d : by_speed) {  // ties go to the faster device
      if (used[static_cast<size_t>(d)]) continue;
      if (pick < 0 || k.hidden_hop1(chain.back(), d) < k.hidden_hop1(chain.back(), pick)) pick = d;
    }
    used[static_cast<size_t>(pick)] = true;
    chain.push_back(pick);
  }
  return {by_speed, chain, by_index};
}

}  // namespace

bool better(const Score& a, const Score& b) {
  if (!a.finite()) return false;
  if (!b.finite()) return true;
  const double tol = 1e-12 * std::max(a.token_s, b.token_s);  // true ties differ only by rounding
  if (a.token_s < b.token_s - tol) return true;
  if (a.token_s > b.token_s + tol) return false;
  return a.worst_s < b.worst_s * (1 - 1e-12);
}

Boundaries::Boundaries(const PlanOptions& o, int n_layers) : n_layers_(n_layers) {
  if (!o.forced_layers_per_stage) return;
  const std::vector<int>& counts = *o.forced_layers_per_stage;
  if (counts.empty()) throw std::invalid_argument("partition: forced_layers_per_stage is empty");
  next_.assign(static_cast<size_t>(n_layers) + 1, -1);
  long long at = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 1)
      throw std::invalid_argument("partition: forced_layers_per_stage[" + std::to_string(i) + "] = " +
                                  std::to_string(counts[i]) + " must be >= 1");
    if (at + counts[i] > n_layers) break;
    next_[static_cast<size_t>(at)] = static_cast<int>(at + counts[i]);
    at += counts[i];
  }
  long long sum = 0;
  for (int c : counts) sum += c;
  if (sum != n_layers)
    throw std::invalid_argument("partition: forced_layers_per_stage sums to " + std::to_string(sum) +
                                " layers but the model has " + std::to_string(n_layers));
}

int Boundaries::lowest_end(int first) const {
  return next_.empty() ? first + 1 : next_[static_cast<size_t>(first)];
}

int Boundaries::highest_end(int first) const {
  return next_.empty() ? n_layers_ : next_[static_cast<size_t>(first)];
}

bool subsets_affordable(int n_devices, int n_layers) {
  if (n_devices > 16) return false;
  const double states = std::ldexp(1.0, n_devices) * n_devices * (n_layers + 1);
  const double work = states * n_devices * (n_layers + 1);
  return states <= 4e7 && work <= 2e9;
}

Found search_subsets(const Coster& k, const Boundaries& b) {
  const int n = k.n_devices(), n_layers = k.n_layers();
  const size_t stride = static_cast<size_t>(n_layers) + 1;
  const uint32_t full = (1u << n) - 1;
  auto row = [&](uint32_t mask, int last) { return (static_cast<size_t>(mask) * n + last) * stride; };
  std::vector<Score> best(row(full + 1, 0));
  std::vector<int32_t> from(best.size(), kNone);  // previous (last device * stride + end layer)

  // Masks grow numerically as devices are added, so every state's predecessors come first.
  for (uint32_t mask = 1; mask <= full; ++mask) {
    for (int d = 0; d < n; ++d) {
      if (!((mask >> d) & 1)) continue;
      const uint32_t before = mask & ~(1u << d);
      Score* out = &best[row(mask, d)];
      int32_t* out_from = &from[row(mask, d)];
      if (before == 0) {
        relax(k, b, Score{0, 0}, -1, d, 0, out, out_from, kStart);
        continue;
      }
      for (int p = 0; p < n; ++p) {
        if (!((before >> p) & 1)) continue;
        const Score* in = &best[row(before, p)];
        for (int first = 1; first < n_layers; ++first) {
          if (in[first].finite())
            relax(k, b, in[first], p, d, first, out, out_from, static_cast<int32_t>(p * stride + first));
        }
      }
    }
  }

  Found found;
  uint32_t best_mask = 0;
  int best_last = -1;
  for (uint32_t mask = 1; mask <= full; ++mask) {
    for (int d = 0; d < n; ++d) {
      if (((mask >> d) & 1) && better(best[row(mask, d) + stride - 1], found.score)) {
        found.score = best[row(mask, d) + stride - 1];
        best_mask = mask;
        best_last = d;
      }
    }
  }
  if (best_last < 0) return found;
  for (int d = best_last, end = n_layers;;) {
    const int32_t code = from[row(best_mask, d) + static_cast<size_t>(end)];
    if (code == kStart) {
      found.pieces.push_back({d, 0, end});
      break;
    }
    const int prev = static_cast<int>(code / static_cast<int32_t>(stride));
    const int first = static_cast<int>(code % static_cast<int32_t>(stride));
    found.pieces.push_back({d, first, end});
    best_mask &= ~(1u << d);
    d = prev;
    end = first;
  }
  std::reverse(found.pieces.begin(), found.pieces.end());
  return found;
}

Found search_order(const Coster& k, const Boundaries& b, const std::vector<int>& order, bool use_all) {
  const int m = static_cast<int>(order.size()), n_layers = k.n_layers();
  const size_t stride = static_cast<size_t>(n_layers) + 1;
  std::vector<Score> best(static_cast<size_t>(m) * stride);
  std::vector<int32_t> from(best.size(), kNone);  // previous (order index * stride + end layer)

  for (int i = 0; i < m; ++i) {
    const int d = order[static_cast<size_t>(i)];
    Score* out = &best[static_cast<size_t>(i) * stride];
    int32_t* out_from = &from[static_cast<size_t>(i) * stride];
    if (!use_all || i == 0) relax(k, b, Score{0, 0}, -1, d, 0, out, out_from, kStart);
    for (int pi = use_all ? i - 1 : 0; pi >= 0 && pi < i; ++pi) {
      const Score* in = &best[static_cast<size_t>(pi) * stride];
      for (int first = 1; first < n_layers; ++first) {
        if (in[first].finite())
          relax(k, b, in[first], order[static_cast<size_t>(pi)], d, first, out, out_from,
                static_cast<int32_t>(pi * stride + first));
      }
    }
  }

  Found found;
  int best_i = -1;
  for (int i = use_all ? m - 1 : 0; i < m; ++i) {
    if (better(best[static_cast<size_t>(i) * stride + stride - 1], found.score)) {
      found.score = best[static_cast<size_t>(i) * stride + stride - 1];
      best_i = i;
    }
  }
  if (best_i < 0) return found;
  for (int i = best_i, end = n_layers;;) {
    const int32_t code = from[static_cast<size_t>(i) * stride + static_cast<size_t>(end)];
    const int d = order[static_cast<size_t>(i)];
    if (code == kStart) {
      found.pieces.push_back({d, 0, end});
      break;
    }
    const int first = static_cast<int>(code % static_cast<int32_t>(stride));
    found.pieces.push_back({d, first, end});
    i = static_cast<int>(code / static_cast<int32_t>(stride));
    end = first;
  }
  std::reverse(found.pieces.begin(), found.pieces.end());
  return found;
}

Found search_heuristic(const Coster& k, const Boundaries& b) {
  Found best;
  std::vector<int> best_order;
  for (const std::vector<int>& order : candidate_orders(k)) {
    Found f = search_order(k, b, order, false);
    if (better(f.score, best.score)) {
      best = std::move(f);
      best_order = order;
    }
  }
  if (best_order.empty()) return best;
  // Adjacent swaps while one helps, within a bounded amount of work.
  const double per_search = std::pow(static_cast<double>(k.n_devices()) * (k.n_layers() + 1), 2);
  int searches_left = static_cast<int>(std::clamp(4e9 / std::max(per_search, 1.0), 0.0, 4.0 * k.n_devices()));
  for (bool improved = true; improved && searches_left > 0;) {
    improved = false;
    for (size_t i = 0; i + 1 < best_order.size() && searches_left > 0; ++i, --searches_left) {
      std::vector<int> order = best_order;
      std::swap(order[i], order[i + 1]);
      Found f = search_order(k, b, order, false);
      if (better(f.score, best.score)) {
        best = std::move(f);
        best_order = std::move(order);
        improved = true;
      }
    }
  }
  return best;
}

}  // namespace zen::partition::detail
