// AVX-512 (VNNI) gemm tiles for Q4_K, Q5_K and Q6_K weights and their load-time layouts
// (Q4_K_LANES, Q4_K_X4, Q6_K_LANES: kernels/quant_k_lanes.cpp) x Q8_K activations (batched
// decode, prompt processing). Q4_K/Q5_K read the activations in the lane-aligned layout (see
// kernels/quant_k_avx512.h), Q6_K in plain Q8_K order, the load-time layouts in their own.
// A register tile of up to 4 weight rows x 4 activation rows: per super-block each weight row is
// unpacked once (its levels and scale vectors) and reused for every activation row; each
// (row, activation) pair is accumulated with the same lane arithmetic and in the same order as
// vec_dot, so every result is bit-identical to vec_dot (a sequence's logits do not depend on
// which other sequences share its batch).
//
// Memory: the 4 rows of a tile are read side by side, 4 short streams the hardware prefetcher
// does not pick up; each step therefore prefetches the same block of the rows two tiles ahead
// (measured on TinyLlama-shaped Q4_K_M, 1 thread: 4-sequence decode 41 -> 104 tokens/s), into
// L2, not L1: `zen bench -t 1 -b 2,4` 31 -> 51 and 55 -> 61 tokens/s (2 threads, 4 sequences:
// about 88 -> 93). Into L1 the prefetches crowd the core's own misses, and 2 rows cost as much
// as 4; a prefetch distance of 1, 4 or 8 tiles changed nothing.
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/quant_k_avx512.h"
#include "kernels/quant_k_x86.h"
#include "kernels/repack.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx512 {
namespace {

using TileFn = void (*)(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, size_t ldy);

constexpr int kPrefetchTiles = 2;

// The register tile only stays in registers when every loop over its rows and columns is
// unrolled: GCC left the row loop rolled and kept the 16 accumulators on the stack.
#define ZEN_UNROLL _Pragma("GCC unroll 16")

// Prefetches the `Bytes` of a block at p into L2, one line at a time.
template <size_t Bytes>
inline void prefetch_block(const void* p) {
  const char* c = static_cast<const char*>(p);
  for (size_t o = 0; o < Bytes; o += 64) _mm_prefetch(c + o, _MM_HINT_T1);
  _mm_prefetch(c + Bytes - 1, _MM_HINT_T1);  // an unaligned block's last line
}

// One column's 16-lane integer sums of rows 2h and 2h+1 (s0, s1), folded into `first`:
// after pair 0, chunks [r0 c0+c2, r0 c1+c3, r1 c0+c2, r1 c1+c3]; after pair 1, chunk r = row r
// folded to 4 lanes (integer adds: exact in any order).
inline void fold_rows(__m512i& first, int h, __m512i s0, __m512i s1) {
  const __m512i half = _mm512_add_epi32(_mm512_shuffle_i64x2(s0, s1, _MM_SHUFFLE(1, 0, 1, 0)),
                                        _mm512_shuffle_i64x2(s0, s1, _MM_SHUFFLE(3, 2, 3, 2)));
  if (h == 0)
    first = half;
  else
    first = _mm512_add_epi32(_mm512_shuffle_i64x2(first, half, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_i64x2(first, half, _MM_SHUFFLE(3, 1, 3, 1)));
}
// fold_rows' result with row r in lanes 4r .. 4r+3, also for a tile of one row pair.
template <int kPairs>
inline __m512i folded(__m512i first) {
  if constexpr (kPairs > 1) return first;
  const __m512i z = _mm512_setzero_si512();
  return _mm512_add_epi32(_mm512_shuffle_i64x2(first, z, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i64x2(first, z, _MM_SHUFFLE(3, 1, 3, 1)));
}
// y for a tile whose column c keeps row r's 4 lanes at 4r .. 4r+3 of acc[c] (scale term) and
// acc_min[c] (mins term), summed in hsum128's order (a0 + a2) + (a1 + a3), as vec_dot does.
template <int R, int C>
inline void store_rows(const __m512 (&acc)[C], const __m512 (&acc_min)[C], float* y, size_t ldy) {
  ZEN_UNROLL
  for (int c = 0; c < C; ++c) {
    alignas(64) float a[16], m[16];
    _mm512_store_ps(a, acc[c]);
    _mm512_store_ps(m, acc_min[c]);
    ZEN_UNROLL
    for (int r = 0; r < R; ++r)
      y[ldy * c + r] = ((a[4 * r] + a[4 * r + 2]) + (a[4 * r + 1] + a[4 * r + 3])) -
                       ((m[4 * r] + m[4 * r + 2]) + (m[4 * r + 1] + m[4 * r + 3]));
  }
}

// The integer sums of R weight rows with C columns, row r in lanes 4r .. 4r+3 of first[c]:
// row(r, s) fills s[c] with row r's 16-lane sums for every column; rows go two at a time
// through fold_rows, so only two rows' sums are live at once. (tile_q4_K_lanes keeps its own
// loop: through this helper GCC kept its LANES tile's state on the stack, 13.2 -> 7.2 GB/s.)
template <int R, int C, class RowFn>
__attribute__((always_inline)) inline void fold_tile_rows(__m512i (&first)[C], RowFn&& row) {
  constexpr int kPairs = (R + 1) / 2;
  ZEN_UNROLL
  for (int h = 0; h < kPairs; ++h) {
    __m512i s[2][C];
    ZEN_UNROLL
    for (int i = 0; i < 2; ++i) {
      if (2 * h + i >= R) break;
      row(2 * h + i, s[i]);
    }
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) fold_rows(first[c], h, s[0][c], 2 * h + 1 < R ? s[1][c] : _mm512_setzero_si512());
  }
  ZEN_UNROLL
  for (int c = 0; c < C; ++c) first[c] = folded<kPairs>(first[c]);
}

// Q4_K, and Q5_K (Block = BlockQ5_K: the fifth bit of each level comes from qh).
// Per super-block, each (row, column) integer sum (16 lanes) folds to 4 lanes, and the 4 rows
// of a column share one float accumulator (and one for the mins term): row r in lanes
// 4r .. 4r+3, updated with the same lane arithmetic as vec_dot's 4-lane accumulators, so
// results stay bit-identical. Rows are unpacked two at a time and their sums merged pairwise
// (shuffle + add), which keeps the whole tile in registers (16 separate accumulators did not
// fit beside the unpacked rows).
template <typename Block, int R, int C>
void tile_k4(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  constexpr bool kHigh = sizeof(Block) == sizeof(BlockQ5_K);
  constexpr int kPairs = (R + 1) / 2;
  __m512 acc[C], acc_min[C];
  ZEN_UNROLL
  for (int c = 0; c < C; ++c) acc[c] = acc_min[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* xb[C];
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8_K*>(x + xs * c) + b;
    __m512i mins = _mm512_setzero_si512();            // row r's 8 mins in 16-bit lanes 8r .. 8r+7
    __m512 dw = _mm512_setzero_ps(), dmin = dw;       // row r's d and dmin in lanes 4r .. 4r+3
    __m512i first[C];                                 // rows 0 and 1 of each column, half folded
    ZEN_UNROLL
    for (int h = 0; h < kPairs; ++h) {
      LanePair v[2][2];
      __m512i s[2];
      ZEN_UNROLL
      for (int i = 0; i < 2; ++i) {
        const int r = 2 * h + i;
        if (r >= R) break;
        const Block* wb = reinterpret_cast<const Block*>(w + ws * r) + b;
        prefetch_block<sizeof(Block)>(reinterpret_cast<const uint8_t*>(wb) + ws * R * kPrefetchTiles);
        const __m128i sm = k4_scales_mins(wb->scales);
        const auto lanes = static_cast<__mmask16>(0xfu << (4 * r));
        mins = _mm512_mask_broadcast_i32x4(mins, lanes, _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)));
        dw = _mm512_mask_broadcastss_ps(dw, lanes, _mm_set_ss(_cvtsh_ss(wb->d)));
        dmin = _mm512_mask_broadcastss_ps(dmin, lanes, _mm_set_ss(_cvtsh_ss(wb->dmin)));
        ZEN_UNROLL
        for (int p = 0; p < 2; ++p) {
          if constexpr (kHigh)
            v[i][p] = q5_lane_levels(wb->qs, wb->qh, p);
          else
            v[i][p] = q4_lane_levels(wb->qs, p);
        }
        s[i] = lane_scales(sm);
      }
      ZEN_UNROLL
      for (int c = 0; c < C; ++c)
        fold_rows(first[c], h, dot_lanes(v[0], xb[c]->qs, s[0]),
                  2 * h + 1 < R ? dot_lanes(v[1], xb[c]->qs, s[1]) : _mm512_setzero_si512());
    }
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) {
      const __m512i sumi = folded<kPairs>(first[c]);
      const __m512 dx = _mm512_set1_ps(xb[c]->d);
      const __m512i mprod = _mm512_madd_epi16(mins, _mm512_broadcast_i32x4(load128(xb[c]->bsums)));
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dw), _mm512_cvtepi32_ps(sumi), acc[c]);
      acc_min[c] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dmin), _mm512_cvtepi32_ps(mprod), acc_min[c]);
    }
  }
  store_rows<R, C>(acc, acc_min, y, ldy);
}

// Q4_K_LANES and Q4_K_X4 (kX4: rows interleaved in groups of 4, kernels/repack.h):
// two super-blocks per step, as vec_dot_q4_K_lanes. Each weight row's levels are read without
// shuffles and meet every column with 4 vpdpbusd; the two super-blocks' sums share one pack and
// one vpdpwssd per (row, column), then fold to 4 lanes (b, b, b+1, b+1) with row r in lanes
// 4r .. 4r+3 of the column's accumulator, as tile_k4. A full X4 step's level vectors hold all
// 4 rows (x4_step_sums), whose sums come out in that layout with no fold.
// X4 tiles read one sequential stream and prefetch it x4_ahead bytes ahead; LANES tiles read
// 4 rows side by side and prefetch the rows of the tile after next, as tile_k4.
// The distance covers about the same time whatever the tile's width: a 1-column step is 4
// times shorter than a 4-column one (zen_bench_kernels gemm/q4_K_x4/.../mem, 2 threads:
// x1 at 4 KiB ahead 25 GB/s, at 8 KiB 44; x2 27 -> 31 at 6 KiB; x4 best at 4 KiB).
constexpr size_t x4_ahead(int columns) { return columns == 1 ? 8192 : columns == 2 ? 6144 : 4096; }

// A step's scale data, every row's at once, in lanes 4r .. 4r+3 for row r (b, b, b+1, b+1):
// dw and dmin = (d_b, d_b, d_b+1, d_b+1) and the same of dmin; mins[0] and mins[1] the 16-bit
// mins of the mins term (MinPairs' lo and hi in 128-bit chunk r); sc[r] = row r's scales for
// the packed sums (pair_scales), or from a full Q4_K_X4 step (x4_scales) sc[g] = sub-blocks
// 2g and 2g+1's scales of all 4 rows (x4_step_sums).
template <int R>
struct StepScales {
  __m512i mins[2], sc[R];
  __m512 dw, dmin;
};

// From Q4_K_LANES blocks (row r's blocks b, b+1 at wb[r]; b alone without `pair`), row by row.
template <int R>
inline void block_scales(const BlockQ4_K* const (&wb)[R], bool pair, StepScales<R>& s) {
  s.mins[0] = s.mins[1] = _mm512_setzero_si512();
  s.dw = s.dmin = _mm512_setzero_ps();
  ZEN_UNROLL
  for (int r = 0; r < R; ++r) {
    const __m128i sm0 = k4_scales_mins(wb[r][0].scales);
    const __m128i sm1 = pair ? k4_scales_mins(wb[r][1].scales) : _mm_setzero_si128();
    const auto lanes = static_cast<__mmask16>(0xfu << (4 * r));
    const MinPairs m = min_pairs(_mm_cvtepu8_epi16(_mm_srli_si128(sm0, 8)), _mm_cvtepu8_epi16(_mm_srli_si128(sm1, 8)));
    s.mins[0] = _mm512_mask_broadcast_i32x4(s.mins[0], lanes, m.lo);
    s.mins[1] = _mm512_mask_broadcast_i32x4(s.mins[1], lanes, m.hi);
    const float d0 = _cvtsh_ss(wb[r][0].d), d1 = pair ? _cvtsh_ss(wb[r][1].d) : 0.f;
    const float m0 = _cvtsh_ss(wb[r][0].dmin), m1 = pair ? _cvtsh_ss(wb[r][1].dmin) : 0.f;
    s.dw = _mm512_mask_broadcast_f32x4(s.dw, lanes, _mm_set_ps(d1, d1, d0, d0));
    s.dmin = _mm512_mask_broadcast_f32x4(s.dmin, lanes, _mm_set_ps(m1, m1, m0, m0));
    s.sc[r] = pair_scales(sm0, sm1);
  }
}

// Index vectors of x4_scales.
struct X4Index {
  int16_t sc[4][32];  // group g's lanes from the 16-bit scales of all 8 blocks (slot 8k + j)
  int32_t dw[16];     // lane 4r + m: block k = 2r + m / 2, whose d sits at k and dmin at 8 + k
  int64_t scale_shift[8], min_shift[8];
};
constexpr X4Index x4_index() {
  X4Index x{};
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) {
      // 16-bit lane 8r + m multiplies row r's sums of block b + (m >= 4), sub-block 2g + (m % 4) / 2
      const int r = l / 8, m = l % 8, k = 2 * r + (m >= 4), j = 2 * g + (m % 4) / 2;
      x.sc[g][l] = static_cast<int16_t>(8 * k + j);
    }
  for (int l = 0; l < 16; ++l) x.dw[l] = 2 * (l / 4) + (l % 4) / 2;
  for (int q = 0; q < 8; ++q) {  // hi's byte q holds slot q's top bits at 0, slot q + 32's at 2 (scales; mins 4, 6)
    x.scale_shift[q] = q < 4 ? 4 : 2;
    x.min_shift[q] = q < 4 ? 0 : 2;
  }
  return x;
}
constexpr X4Index kX4Index = x4_index();

// From a full Q4_K_X4 step (kernels/repack.h): all 8 blocks' scales and mins from one load of
// lo and of hi, d and dmin from one conversion. The same dw, dmin and mins as block_scales;
// sc by sub-block group (x4_step_sums).
inline void x4_scales(const uint8_t* step, StepScales<4>& s) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  const __m512i lo = load512(step + 32), hi = _mm512_broadcast_i64x4(load256(step + 96));
  // slot p = 8t + j: the low nibbles, then the top bits moved to bits 4..5 (A | (B & C))
  const __m512i sc = _mm512_ternarylogic_epi32(_mm512_and_si512(lo, m4), _mm512_sllv_epi64(hi, load512(kX4Index.scale_shift)), m30, 0xf8);
  const __m512i mn = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(lo, 4), m4),
                                               _mm512_srlv_epi64(hi, load512(kX4Index.min_shift)), m30, 0xf8);
  // scales of blocks 0..3 (rows 0, 1) and 4..7; mins 0..3 of every block, then 4..7 (x4_min_slot)
  const __m512i sc16[2] = {_mm512_cvtepu8_epi16(_mm512_castsi512_si256(sc)), _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(sc, 1))};
  s.mins[0] = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(mn));
  s.mins[1] = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(mn, 1));
  ZEN_UNROLL
  for (int g = 0; g < 4; ++g) s.sc[g] = _mm512_permutex2var_epi16(sc16[0], load512(kX4Index.sc[g]), sc16[1]);
  const __m512 dd = _mm512_cvtph_ps(load256(step));
  const __m512i dw = load512(kX4Index.dw);
  s.dw = _mm512_permutexvar_ps(dw, dd);
  s.dmin = _mm512_permutexvar_ps(_mm512_add_epi32(dw, _mm512_set1_epi32(8)), dd);
}

// What a step's scale and mins terms take from one column's activations (blocks b, b+1, or b
// alone without `pair`): (dx_b, dx_b, dx_b+1, dx_b+1) and the MinPairs of their bsums, each in
// every 128-bit chunk.
struct ColTerms {
  __m512 dx;
  __m512i bs_lo, bs_hi;
};
inline ColTerms col_terms(const BlockQ8_K* xb, bool pair) {
  const MinPairs bs = min_pairs(load128(xb[0].bsums), pair ? load128(xb[1].bsums) : _mm_setzero_si128());
  const float dx0 = xb[0].d, dx1 = pair ? xb[1].d : 0.f;
  return {_mm512_broadcast_f32x4(_mm_set_ps(dx1, dx1, dx0, dx0)), _mm512_broadcast_i32x4(bs.lo), _mm512_broadcast_i32x4(bs.hi)};
}

// Q4_K_X4's activations as its tiles read them, per column and step: the step's two blocks'
// levels and its ColTerms. gemm_q4_K_x4 builds them once per call; every row group then reads
// them instead of rebuilding the terms.
struct alignas(64) X4Col {
  int8_t qs[2][QK_K];
  ColTerms terms;
};

// The integer sums of a full Q4_K_X4 step with C columns, row r in lanes 4r .. 4r+3 of sumi[c]
// (b, b, b+1, b+1): the values the LANES tile gets by folding, with no fold. A level vector
// holds piece v of the 4 rows (kernels/repack.h), 4 lanes of sub-blocks 2g, 2g+1 per row for
// v = g and 4 + g; its low and high nibbles meet Q4_K_LANES activations 16g .. 16g+15 of
// X[2h], X[2h+1] (h = v / 4), the same 16 bytes for every row (a 128-bit broadcast). Four
// vpdpbusd per (block, column) fill a[e][c] with 16 products per lane (|sum| < 2^15); b's and
// b+1's pack together and one vpdpwssd per group applies the scales (sc[g], x4_scales) and
// accumulates: lane 0 of row r sums b's even sub-blocks, lane 1 its odd ones, as the fold does.
template <int C>
__attribute__((always_inline)) inline void x4_step_sums(const uint8_t* levels, const __m512i (&sc)[4],
                                                        const int8_t* const (&xq)[C][2], __m512i (&sumi)[C]) {
  const __m512i z = _mm512_setzero_si512();
  const auto x16 = [](const int8_t* p) { return _mm512_broadcast_i32x4(load128(p)); };
  ZEN_UNROLL
  for (int c = 0; c < C; ++c) sumi[c] = z;
  ZEN_UNROLL
  for (int g = 0; g < 4; ++g) {
    __m512i a[2][C];
    ZEN_UNROLL
    for (int e = 0; e < 2; ++e) {
      const Levels16 v = lanes16_nibbles(load512(levels + 512 * e + 64 * g), load512(levels + 512 * e + 64 * (4 + g)));
      ZEN_UNROLL
      for (int c = 0; c < C; ++c) {
        const int8_t* xg = xq[c][e] + 16 * g;
        __m512i t = _mm512_dpbusd_epi32(z, v.v[0], x16(xg));
        t = _mm512_dpbusd_epi32(t, v.v[1], x16(xg + 64));
        t = _mm512_dpbusd_epi32(t, v.v[2], x16(xg + 128));
        a[e][c] = _mm512_dpbusd_epi32(t, v.v[3], x16(xg + 192));
      }
    }
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) sumi[c] = _mm512_dpwssd_epi32(sumi[c], _mm512_packs_epi32(a[0][c], a[1][c]), sc[g]);
  }
}

// With kX4, x holds X4Col rows (one column's steps, xs bytes apart) instead of Q8_K rows.
template <int R, int C, bool kX4>
void tile_q4_K_lanes(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  constexpr int kPairs = (R + 1) / 2;
  __m512 acc[C], none[C];
  ZEN_UNROLL
  for (int c = 0; c < C; ++c) acc[c] = none[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b += 2) {
    const bool pair = b + 1 < nb;
    const BlockQ8_K* xb[C];
    const X4Col* xc[C];
    const int8_t* xq[C][2];  // column c's activations of b, b+1
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) {
      if constexpr (kX4) {
        xc[c] = reinterpret_cast<const X4Col*>(x + xs * c) + b / 2;
        xq[c][0] = xc[c]->qs[0], xq[c][1] = xc[c]->qs[1];
      } else {
        xb[c] = reinterpret_cast<const BlockQ8_K*>(x + xs * c) + b;
        xq[c][0] = xb[c][0].qs, xq[c][1] = xb[c][1].qs;
      }
    }
    StepScales<R> sc;
    __m512i sumi[C];                        // row r's integer sums in lanes 4r .. 4r+3
    const uint8_t* qs[R][2];                // row r's levels of b, b+1
    [[maybe_unused]] BlockQ4_K lone[R][2];  // X4's lone last blocks
    if constexpr (kX4) {
      const uint8_t* step = w + sizeof(BlockQ4_K) * 4 * static_cast<size_t>(b);  // every step before is a full one
      prefetch_block<kX4StepBlocks * sizeof(BlockQ4_K)>(step + x4_ahead(C));
      if constexpr (R == 4) {  // X4 tiles are 4 rows (a group); smaller ones are only instantiated
        if (pair) {
          x4_scales(step, sc);
          x4_step_sums<C>(step + x4_piece(0, 0, 8), sc.sc, xq, sumi);
        }
      }
      if (!pair || R < 4) {  // the lone last blocks (or a tile of fewer rows), in Q4_K_LANES form
        const BlockQ4_K* wb[R];
        ZEN_UNROLL
        for (int r = 0; r < R; ++r) {
          lone[r][0] = x4_get(w, r, b, nb);
          if (pair) lone[r][1] = x4_get(w, r, b + 1, nb);
          wb[r] = lone[r];
          qs[r][0] = lone[r][0].qs, qs[r][1] = lone[r][1].qs;
        }
        block_scales(wb, pair, sc);
      }
    } else {
      const BlockQ4_K* wb[R];
      ZEN_UNROLL
      for (int r = 0; r < R; ++r) {
        wb[r] = reinterpret_cast<const BlockQ4_K*>(w + ws * r) + b;
        prefetch_block<2 * sizeof(BlockQ4_K)>(reinterpret_cast<const uint8_t*>(wb[r]) + ws * R * kPrefetchTiles);
        qs[r][0] = wb[r][0].qs, qs[r][1] = wb[r][1].qs;
      }
      block_scales(wb, pair, sc);
    }
    // LANES tiles and X4's lone last blocks: each row's sums (16 lanes) folded to 4 lanes
    if (!(kX4 && R == 4 && pair)) {
      __m512i first[C];
      ZEN_UNROLL
      for (int h = 0; h < kPairs; ++h) {
        __m512i s[2][C];
        ZEN_UNROLL
        for (int i = 0; i < 2; ++i) {
          const int r = 2 * h + i;
          if (r >= R) break;
          __m512i t0[C];
          const Levels16 v0 = lanes16_levels(qs[r][0]);
          ZEN_UNROLL
          for (int c = 0; c < C; ++c) t0[c] = lanes16_sums(v0, xq[c][0]);
          if (pair) {
            const Levels16 v1 = lanes16_levels(qs[r][1]);
            ZEN_UNROLL
            for (int c = 0; c < C; ++c)
              s[i][c] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_packs_epi32(t0[c], lanes16_sums(v1, xq[c][1])), sc.sc[r]);
          } else {
            ZEN_UNROLL
            for (int c = 0; c < C; ++c)
              s[i][c] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_packs_epi32(t0[c], _mm512_setzero_si512()), sc.sc[r]);
          }
        }
        ZEN_UNROLL
        for (int c = 0; c < C; ++c) fold_rows(first[c], h, s[0][c], 2 * h + 1 < R ? s[1][c] : _mm512_setzero_si512());
      }
      ZEN_UNROLL
      for (int c = 0; c < C; ++c) sumi[c] = folded<kPairs>(first[c]);
    }
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) {
      ColTerms ct;
      if constexpr (kX4)
        ct = xc[c]->terms;
      else
        ct = col_terms(xb[c], pair);
      const __m512i summ = _mm512_dpwssd_epi32(_mm512_madd_epi16(sc.mins[0], ct.bs_lo), sc.mins[1], ct.bs_hi);
      const __m512 t = _mm512_fmsub_ps(sc.dw, _mm512_cvtepi32_ps(sumi[c]), _mm512_mul_ps(sc.dmin, _mm512_cvtepi32_ps(summ)));
      acc[c] = _mm512_fmadd_ps(ct.dx, t, acc[c]);
    }
  }
  store_rows<R, C>(acc, none, y, ldy);
}

// Q6_K_LANES: one super-block per step; each row's levels meet every column with 4 vpdpbusd,
// then the offset and scales in 32 bits (q6_lanes_scaled), folded to 4 lanes per row as tile_k4.
template <int R, int C>
void tile_q6_K_lanes(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  __m512 acc[C], none[C];
  ZEN_UNROLL
  for (int c = 0; c < C; ++c) acc[c] = none[c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* xb[C];
    __m512i bs32[C];
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) {
      xb[c] = reinterpret_cast<const BlockQ8_K*>(x + xs * c) + b;
      bs32[c] = q6_offsets(xb[c]->bsums);
    }
    __m512 dw = _mm512_setzero_ps();  // row r's d in lanes 4r .. 4r+3
    __m512i first[C];
    fold_tile_rows<R, C>(first, [&](int r, __m512i (&s)[C]) {
      const BlockQ6_K* wb = reinterpret_cast<const BlockQ6_K*>(w + ws * r) + b;
      prefetch_block<sizeof(BlockQ6_K)>(reinterpret_cast<const uint8_t*>(wb) + ws * R * kPrefetchTiles);
      dw = _mm512_mask_broadcastss_ps(dw, static_cast<__mmask16>(0xfu << (4 * r)), _mm_set_ss(_cvtsh_ss(wb->d)));
      const __m512i sc32 = _mm512_cvtepi8_epi32(load128(wb->scales));
      const Levels16 v = q6_lanes_levels(wb->ql, wb->qh);
      ZEN_UNROLL
      for (int c = 0; c < C; ++c) s[c] = q6_lanes_scaled(v, xb[c]->qs, bs32[c], sc32);
    });
    ZEN_UNROLL
    for (int c = 0; c < C; ++c)
      acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(xb[c]->d), dw), _mm512_cvtepi32_ps(first[c]), acc[c]);
  }
  store_rows<R, C>(acc, none, y, ldy);
}

template <int R, int C>
void tile_q6_K(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  __m512 acc[R][C];
  ZEN_UNROLL
  for (int r = 0; r < R; ++r)
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ8_K* xb[C];
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) xb[c] = reinterpret_cast<const BlockQ8_K*>(x + xs * c) + b;
    ZEN_UNROLL
    for (int r = 0; r < R; ++r) {
      const BlockQ6_K* wb = reinterpret_cast<const BlockQ6_K*>(w + ws * r) + b;
      prefetch_block<sizeof(BlockQ6_K)>(reinterpret_cast<const uint8_t*>(wb) + ws * R * kPrefetchTiles);
      const __m256i sc16 = _mm256_cvtepi8_epi16(load128(wb->scales));
      const __m512i sc = _mm512_zextsi256_si512(sc16);
      __m512i v[4];
      ZEN_UNROLL
      for (int k = 0; k < 4; ++k) v[k] = q6_levels(wb->ql, wb->qh, k / 2, k % 2);  // elements 64k .. 64k+63
      const __m512i s[2] = {scale_pairs_by_16(sc, 0), scale_pairs_by_16(sc, 1)};
      const float dw = _cvtsh_ss(wb->d);
      ZEN_UNROLL
      for (int c = 0; c < C; ++c) {
        // levels are q + 32: start from -32 * sum_j sc_j * bsum_j
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, load256(xb[c]->bsums)), 5);
        __m512i sumi = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(offset));
        ZEN_UNROLL
        for (int p = 0; p < 2; ++p)
          sumi = dot_pair(sumi, v[2 * p], xb[c]->qs + 128 * p, v[2 * p + 1], xb[c]->qs + 128 * p + 64, s[p]);
        acc[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(xb[c]->d * dw), _mm512_cvtepi32_ps(sumi), acc[r][c]);
      }
    }
  }
  ZEN_UNROLL
  for (int r = 0; r < R; ++r)
    ZEN_UNROLL
    for (int c = 0; c < C; ++c) y[ldy * c + r] = _mm512_reduce_add_ps(acc[r][c]);
}

// Walks the nr x nc output in tiles of 4 x 4, with smaller tiles at the edges.
void run_tiles(const TileFn (&tiles)[4][4], int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x,
               size_t xs, float* y, size_t ldy) {
  const auto* wp = static_cast<const uint8_t*>(w);
  const auto* xp = static_cast<const uint8_t*>(x);
  const int64_t nb = n / QK_K;
  for (int64_t c0 = 0; c0 < nc; c0 += 4) {
    const int64_t cn = nc - c0 < 4 ? nc - c0 : 4;
    for (int64_t r0 = 0; r0 < nr; r0 += 4) {
      const int64_t rn = nr - r0 < 4 ? nr - r0 : 4;
      tiles[rn - 1][cn - 1](nb, wp + ws * static_cast<size_t>(r0), ws, xp + xs * static_cast<size_t>(c0), xs,
                            y + ldy * static_cast<size_t>(c0) + static_cast<size_t>(r0), ldy);
    }
  }
}

template <typename Block>
constexpr TileFn kTilesK4[4][4] = {{tile_k4<Block, 1, 1>, tile_k4<Block, 1, 2>, tile_k4<Block, 1, 3>, tile_k4<Block, 1, 4>},
                                   {tile_k4<Block, 2, 1>, tile_k4<Block, 2, 2>, tile_k4<Block, 2, 3>, tile_k4<Block, 2, 4>},
                                   {tile_k4<Block, 3, 1>, tile_k4<Block, 3, 2>, tile_k4<Block, 3, 3>, tile_k4<Block, 3, 4>},
                                   {tile_k4<Block, 4, 1>, tile_k4<Block, 4, 2>, tile_k4<Block, 4, 3>, tile_k4<Block, 4, 4>}};
template <bool kX4>
constexpr TileFn kTilesQ4KLanes[4][4] = {
    {tile_q4_K_lanes<1, 1, kX4>, tile_q4_K_lanes<1, 2, kX4>, tile_q4_K_lanes<1, 3, kX4>, tile_q4_K_lanes<1, 4, kX4>},
    {tile_q4_K_lanes<2, 1, kX4>, tile_q4_K_lanes<2, 2, kX4>, tile_q4_K_lanes<2, 3, kX4>, tile_q4_K_lanes<2, 4, kX4>},
    {tile_q4_K_lanes<3, 1, kX4>, tile_q4_K_lanes<3, 2, kX4>, tile_q4_K_lanes<3, 3, kX4>, tile_q4_K_lanes<3, 4, kX4>},
    {tile_q4_K_lanes<4, 1, kX4>, tile_q4_K_lanes<4, 2, kX4>, tile_q4_K_lanes<4, 3, kX4>, tile_q4_K_lanes<4, 4, kX4>}};
constexpr TileFn kTilesQ6KLanes[4][4] = {
    {tile_q6_K_lanes<1, 1>, tile_q6_K_lanes<1, 2>, tile_q6_K_lanes<1, 3>, tile_q6_K_lanes<1, 4>},
    {tile_q6_K_lanes<2, 1>, tile_q6_K_lanes<2, 2>, tile_q6_K_lanes<2, 3>, tile_q6_K_lanes<2, 4>},
    {tile_q6_K_lanes<3, 1>, tile_q6_K_lanes<3, 2>, tile_q6_K_lanes<3, 3>, tile_q6_K_lanes<3, 4>},
    {tile_q6_K_lanes<4, 1>, tile_q6_K_lanes<4, 2>, tile_q6_K_lanes<4, 3>, tile_q6_K_lanes<4, 4>}};
constexpr TileFn kTilesQ6K[4][4] = {{tile_q6_K<1, 1>, tile_q6_K<1, 2>, tile_q6_K<1, 3>, tile_q6_K<1, 4>},
                                    {tile_q6_K<2, 1>, tile_q6_K<2, 2>, tile_q6_K<2, 3>, tile_q6_K<2, 4>},
                                    {tile_q6_K<3, 1>, tile_q6_K<3, 2>, tile_q6_K<3, 3>, tile_q6_K<3, 4>},
                                    {tile_q6_K<4, 1>, tile_q6_K<4, 2>, tile_q6_K<4, 3>, tile_q6_K<4, 4>}};

}  // namespace

void gemm_q4_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
               float* y, size_t ldy) {
  run_tiles(kTilesK4<BlockQ4_K>, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

void gemm_q5_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
               float* y, size_t ldy) {
  run_tiles(kTilesK4<BlockQ5_K>, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

void gemm_q4_K_lanes(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
                     float* y, size_t ldy) {
  run_tiles(kTilesQ4KLanes<false>, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

// Rows in groups of 4 (nr a multiple of 4): every tile starts a group and reads it whole. The
// activations are first laid out as the tiles read them (X4Col), once for all row groups.
void gemm_q4_K_x4(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
                  float* y, size_t ldy) {
  if (nr % 4 != 0) throw std::invalid_argument("q4_K_x4: rows come in groups of 4");
  const int64_t nb = n / QK_K, steps = (nb + 1) / 2;
  thread_local std::vector<X4Col> cols;
  cols.resize(static_cast<size_t>(nc * steps));
  for (int64_t c = 0; c < nc; ++c) {
    const auto* xb = reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(x) + x_stride * static_cast<size_t>(c));
    for (int64_t s = 0; s < steps; ++s) {
      X4Col& o = cols[static_cast<size_t>(c * steps + s)];
      const int64_t b = 2 * s;
      const bool pair = b + 1 < nb;
      std::memcpy(o.qs[0], xb[b].qs, QK_K);
      if (pair) std::memcpy(o.qs[1], xb[b + 1].qs, QK_K);
      o.terms = col_terms(xb + b, pair);
    }
  }
  run_tiles(kTilesQ4KLanes<true>, n, nr, nc, w, w_stride, cols.data(), static_cast<size_t>(steps) * sizeof(X4Col), y, ldy);
}

void gemm_q6_K_lanes(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
                     float* y, size_t ldy) {
  run_tiles(kTilesQ6KLanes, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

void gemm_q6_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
               float* y, size_t ldy) {
  run_tiles(kTilesQ6K, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

}  // namespace zen::kernels::kq_avx512
