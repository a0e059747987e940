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

// Q4_K_X4 (kernels/quant_k_lanes.cpp) is a sequence of steps, each the blocks of a group's 4
// rows at b = 2s and 2s+1 (8 blocks, block k = 2i + b % 2 of the step) or a lone last block
// of each row (4 blocks, k = i). A step of S blocks takes their S * 144 bytes as:
//   dd[2S] fp16: d of block k at k, dmin at S + k;
//   lo[8S], hi[4S]: the 6-bit scales and mins: slot p holds scale j of block k for
//     p = 8k + j, and min j of block k for p = x4_min_slot(k, j, S); lo[p] = scale & 15 |
//     (min & 15) << 4; hi[q] (q < 4S) = the top bits of scale q | scale q + 4S << 2 | min q << 4
//     | min q + 4S << 6;
//   the levels, 16S * 8 bytes: block k's 128 bytes in Q4_K_LANES order, cut into 8 pieces of
//     16 bytes, and piece v of the 4 rows side by side (x4_piece): a 64-byte vector of them
//     holds the same piece of rows 0, 1, 2, 3 in its 128-bit chunks 0 .. 3.
// So one load of lo and of hi gives all the step's scales with a few shifts and masks, in the
// order the AVX-512 tile takes them, and each level vector serves all 4 rows at once: a
// 16-byte piece is 4 lanes of 2 sub-blocks (Q4_K_LANES), so the tile's sums come out with
// row r in chunk r, already apart, and need no fold across chunks.
constexpr int64_t kX4StepBlocks = 8;
// Byte offset in a step of S blocks of piece v (0..7, Q4_K_LANES bytes 16v .. 16v+15) of block
// k: the S / 4 blocks of a row one after another (512 bytes each), in each the pieces in order
// (64 bytes each), in each the rows.
constexpr int64_t x4_piece(int k, int v, int S) {
  const int row = S == 8 ? k / 2 : k, e = S == 8 ? k % 2 : 0;
  return 16 * S + 512 * e + 64 * v + 16 * row;
}
// In a full step, mins 0..3 of every block come first, 4..7 after, each half in the order of
// 16-bit lanes 8r + 4e + j % 4 (block k = 2r + e) that the tile's mins term multiplies.
constexpr int x4_min_slot(int k, int j, int S) { return S == 8 ? 32 * (j / 4) + 8 * (k / 2) + 4 * (k % 2) + j % 4 : 8 * k + j; }
// Where block b (of nb per row) of row i (0..3) sits: the step's byte offset from the group's
// start, its block count S and the block's k in it.
struct X4Place {
  int64_t offset;
  int S, k;
};
X4Place x4_place(int64_t i, int64_t b, int64_t nb);
// Block b of row i of the group at `group`, in Q4_K_LANES form.
BlockQ4_K x4_get(const void* group, int64_t i, int64_t b, int64_t nb);

// `rows` rows of n elements of `from` (row_bytes(from, n) apart) at src, rewritten as `to` (a
// repack_target of `from`) at dst: same size, no overlap. rows must be a multiple of
// row_group(to). Throws std::invalid_argument for a pair or row count it does not take.
void repack(DType from, DType to, const void* src, void* dst, int64_t rows, int64_t n);

}  // namespace zen::kernels
