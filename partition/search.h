// Private to partition/: the searches behind plan(). Each returns the best assignment of contiguous
// layer slices to devices under the one-stream token time, or no pieces when nothing fits.
#pragma once

#include <limits>
#include <vector>

#include "partition/cost_internal.h"

namespace zen::partition::detail {

// Lexicographic: one-stream token time first; within 1e-12 of it, the busiest resource's time (the
// stage or link that limits pipelined throughput). Extending two prefixes by the same suffix keeps
// their order, so dynamic programming over this score is exact.
struct Score {
  double token_s = std::numeric_limits<double>::infinity();
  double worst_s = std::numeric_limits<double>::infinity();
  bool finite() const { return token_s < std::numeric_limits<double>::infinity(); }
};
bool better(const Score& a, const Score& b);

struct Piece {
  int device = 0;
  int first = 0;  // layers [first, end)
  int end = 0;
};

struct Found {
  Score score;
  std::vector<Piece> pieces;  // pipeline order; empty when nothing fits
};

// Which slices a stage may take: any, or exactly PlanOptions::forced_layers_per_stage.
class Boundaries {
 public:
  Boundaries(const PlanOptions&, int n_layers);  // throws on invalid forced counts
  // Ends a stage starting at layer `first` may have: [lo, hi]; lo > hi when none.
  int lowest_end(int first) const;
  int highest_end(int first) const;
  bool forced() const { return !next_.empty(); }

 private:
  int n_layers_ = 0;
  std::vector<int> next_;  // forced: boundary after l, or -1 when l is not a boundary; else empty
};

// Every subset of devices in every order: exact, O(2^D * D^2 * L^2) time, O(2^D * D * L) memory.
Found search_subsets(const Coster&, const Boundaries&);
// Devices in this order, each used or skipped (use_all: each used, none skipped): O(D^2 * L^2).
Found search_order(const Coster&, const Boundaries&, const std::vector<int>& order, bool use_all);
// Large clusters: a few candidate orders, then adjacent swaps while they help.
Found search_heuristic(const Coster&, const Boundaries&);

// Whether search_subsets is affordable for this many devices and layers.
bool subsets_affordable(int n_devices, int n_layers);

}  // namespace zen::partition::detail
