// Load-time weight layouts: a weight type may have an internal twin with the same block size
// whose levels sit in the order one ISA's kernels read without shuffling (DType::Q4_K_LANES
// for Q4_K on AVX-512 VNNI). The engine repacks matmul weights into the twin when the level
// in use has kernels for it; everything else (get_row, other levels) still works on the twin
// through its portable entries.
#pragma once
#include <cstdint>
#include <optional>

#include "kernels/ops.h"
#include "kernels/types.h"

namespace zen::kernels {

// The layout w_type's matmuls are fastest in at `isa`, when that is not w_type itself.
std::optional<DType> repack_target(DType w_type, Isa isa);

// n elements of `from` at src, rewritten as `to` (a repack_target of `from`) at dst. Same size;
// src and dst must not overlap. Throws std::invalid_argument for a pair it does not know.
void repack(DType from, DType to, const void* src, void* dst, int64_t n);

}  // namespace zen::kernels
