// Shared pieces of the AVX-512 gemm drivers (kernels/x86/avx512/gemm_*.cpp): where a register
// tile's accumulators come from and go to when K is processed in chunks, and the table of
// tile shapes a driver picks from at the edges of the output.
//
// Everything is in an anonymous namespace: each AVX-512 translation unit gets its own copy, so
// no inline function or template instance is shared with code compiled for another ISA.
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace zen::kernels {
namespace {

// Accumulators of one tile between K chunks.
struct TileIo {
  __m512* acc;    // kept between chunks, row-major with `stride` vectors per weight row
  int stride;
  bool first;     // the first chunk starts from zero
  bool last;      // the last chunk writes y instead of acc
  float* y;       // y[col * ldy + row] from the tile's first weight row and activation row
  size_t ldy;
  int64_t ncols;  // real activation rows in the tile
};

// kTileTable<K>[mr - 1][nc - 1] is K::run<mr, nc> for tiles of up to 4 x 4.
template <class K>
constexpr typename K::Fn kTileTable[4][4] = {
    {K::template run<1, 1>, K::template run<1, 2>, K::template run<1, 3>, K::template run<1, 4>},
    {K::template run<2, 1>, K::template run<2, 2>, K::template run<2, 3>, K::template run<2, 4>},
    {K::template run<3, 1>, K::template run<3, 2>, K::template run<3, 3>, K::template run<3, 4>},
    {K::template run<4, 1>, K::template run<4, 2>, K::template run<4, 3>, K::template run<4, 4>}};

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

}  // namespace
}  // namespace zen::kernels
