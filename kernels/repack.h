// Load-time weight layouts: a weight type may have internal twins with the same block size
// whose levels sit in the order one ISA's kernels read without shuffling (Q4_K_LANES for Q4_K
// on AVX-512 VNNI), and whose rows are interleaved so that a gemm tile reads one sequential
// stream (Q4_K_X4). The engine repacks matmul weights into a twin when the level in use has
// kernels for it; the portable entries keep every twin usable at any level.
#pragma once
#include <cstdint>
#include <optional>

#include "kernels/ops.h"
#include "kernels/types.h"

namespace zen::kernels {

// Rows of a type stored in interleaved groups (1: plain rows). A matrix in such a type has a
// multiple of that many rows; only gemm reads it (no vec_dot, no dequantize), and a gemm call
// starts at a multiple of it (matmul's row blocks are multiples of 4).
int row_group(DType t);

// The layout w_type's matmuls are fastest in at `isa` for a matrix of `rows` rows, when that
// is not w_type itself. With `row_access`, only a layout that still gives single rows
// (get_row: a tied embedding) qualifies.
std::optional<DType> repack_target(DType w_type, Isa isa, int64_t rows, bool row_access = false);

// Q4_K_X4: where block b (of nb per row) of row i (0..3) of a group sits, in blocks from the
// group's start (kernels/quant_k_lanes.cpp).
int64_t x4_block(int64_t i, int64_t b, int64_t nb);

// `rows` rows of n elements of `from` (row_bytes(from, n) apart) at src, rewritten as `to` (a
// repack_target of `from`) at dst: same size, no overlap. rows must be a multiple of
// row_group(to). Throws std::invalid_argument for a pair or row count it does not take.
void repack(DType from, DType to, const void* src, void* dst, int64_t rows, int64_t n);

}  // namespace zen::kernels
