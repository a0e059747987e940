// AVX-512 VNNI gemm for Q8_0 weights x Q8_0 activations (prompt processing), bit-identical to
// the ordered vec_dot in kernels/x86/avx512/legacy.cpp (gemm_exact).
//
// vec_dot keeps, per block, eight int32 lanes of four products each, converts them to float and
// adds d_w * d_x * lanes into an 8-lane accumulator with one FMA per block, block after block.
// Integer sums are exact however they are formed, so this kernel only has to keep the float
// part: every (weight row, activation row) pair owns 8 float lanes updated by the same FMA
// sequence. A zmm holds two such pairs: one weight row against two activation rows.
//
// Per block and tile, each weight row is broadcast to both halves of a zmm and made unsigned
// (u = q + 128, a sign-bit flip), while the activations are repacked once per call and K chunk:
// two activation rows per 64 bytes, VPDPBUSD's starting value -128 * sum(x) per group of four
// (so that it ends at sum(q * x) exactly) and the scales laid out the same way. Then one
// (row, two columns) step is VPDPBUSD, a conversion, the product of the two scales (exact: two
// halves have 11-bit significands) and an FMA. A tile is 4 weight rows x 4 activation pairs:
// 16 accumulators.
//
// K is processed in chunks so the repacked activations (24 KiB) and the weight rows of a tile
// stay in L1; accumulators live in a small buffer between chunks (a float store and reload does
// not change them).
//
// Internal linkage and intrinsics only (see kernels/x86/avx512/legacy.cpp on ODR safety).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"
#include "kernels/x86/avx512/gemm_tiles.h"

namespace zen::kernels {
namespace avx512_gemm {
void gemm_q8_0(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
               size_t ldy);
}  // namespace avx512_gemm

namespace {

constexpr int kRows = 4;           // weight rows per tile
constexpr int kPairs = 4;          // activation row pairs per tile (8 activation rows)
constexpr int64_t kChunk = 32;     // blocks per K chunk
constexpr int64_t kRowGroup = 64;  // weight rows whose accumulators are kept between chunks

// One K chunk of up to 2 * kPairs activation rows.
struct PackedX {
  __m512i q[kChunk][kPairs];     // bytes 0-31: row 2p, bytes 32-63: row 2p + 1
  __m512i bias[kChunk][kPairs];  // -128 * (sum of each group of four bytes of q)
  __m512 d[kChunk][kPairs];      // lanes 0-7: scale of row 2p, lanes 8-15: scale of row 2p + 1
};

// Rows a and b (b may equal a when the pair has one real row) of blocks [kb, kb + kn).
void pack_pair(const BlockQ8_0* a, const BlockQ8_0* b, int64_t kn, int p, PackedX& px) {
  const __m512i c128 = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t k = 0; k < kn; ++k) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[k].qs));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[k].qs));
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    px.q[k][p] = q;
    px.bias[k][p] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, q));
    px.d[k][p] = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(a[k].d)), _mm256_set1_ps(_cvtsh_ss(b[k].d)), 1);
  }
}

// The horizontal sum of vec_dot_q8_0_ordered.
float hsum8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// Rows i of w (blocks [0, kn)) against pairs p of px.
struct TileQ8_0 {
  using Fn = void (*)(int64_t, const uint8_t*, size_t, const PackedX&, const TileIo&);
  template <int MR, int NP>
  static void run(int64_t kn, const uint8_t* w, size_t ws, const PackedX& px, const TileIo& io);
};

template <int MR, int NP>
void TileQ8_0::run(int64_t kn, const uint8_t* w, size_t ws, const PackedX& px, const TileIo& io) {
  __m512 acc[MR][NP];
  for (int i = 0; i < MR; ++i)
    for (int p = 0; p < NP; ++p) acc[i][p] = io.first ? _mm512_setzero_ps() : io.acc[i * io.stride + p];
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t k = 0; k < kn; ++k) {
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const BlockQ8_0* wb = reinterpret_cast<const BlockQ8_0*>(w + static_cast<size_t>(i) * ws) + k;
      _mm_prefetch(reinterpret_cast<const char*>(wb) + kRows * ws, _MM_HINT_T1);
      const __m512i u = _mm512_xor_si512(
          _mm512_broadcast_i32x8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb->qs))), flip);
      const __m512 dw = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(wb->d)));
#pragma GCC unroll 4
      for (int p = 0; p < NP; ++p) {
        const __m512i s = _mm512_dpbusd_epi32(px.bias[k][p], u, px.q[k][p]);
        acc[i][p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, px.d[k][p]), _mm512_cvtepi32_ps(s), acc[i][p]);
      }
    }
  }
  if (!io.last) {
    for (int i = 0; i < MR; ++i)
      for (int p = 0; p < NP; ++p) io.acc[i * io.stride + p] = acc[i][p];
    return;
  }
  for (int p = 0; p < NP; ++p)
    for (int i = 0; i < MR; ++i) {
      io.y[static_cast<size_t>(2 * p) * io.ldy + static_cast<size_t>(i)] = hsum8(_mm512_castps512_ps256(acc[i][p]));
      if (2 * p + 1 < io.ncols)
        io.y[static_cast<size_t>(2 * p + 1) * io.ldy + static_cast<size_t>(i)] = hsum8(_mm512_extractf32x8_ps(acc[i][p], 1));
    }
}

}  // namespace

namespace avx512_gemm {

void gemm_q8_0(int64_t n, int64_t nr, int64_t nc, const void* vw, size_t ws, const void* vx, size_t xs, float* y,
               size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* x = static_cast<const uint8_t*>(vx);
  const int64_t nb = n / QK8_0;
  PackedX px;
  __m512 accbuf[kRowGroup * kPairs];
  for (int64_t c0 = 0; c0 < nc; c0 += 2 * kPairs) {
    const int64_t ncols = min64(2 * kPairs, nc - c0);
    const int np = static_cast<int>((ncols + 1) / 2);
    for (int64_t r0 = 0; r0 < nr; r0 += kRowGroup) {
      const int64_t rn = min64(kRowGroup, nr - r0);
      for (int64_t kb = 0; kb < nb; kb += kChunk) {
        const int64_t kn = min64(kChunk, nb - kb);
        for (int p = 0; p < np; ++p) {
          const int64_t ca = c0 + 2 * p, cb = ca + 1 < c0 + ncols ? ca + 1 : ca;
          pack_pair(reinterpret_cast<const BlockQ8_0*>(x + static_cast<size_t>(ca) * xs) + kb,
                    reinterpret_cast<const BlockQ8_0*>(x + static_cast<size_t>(cb) * xs) + kb, kn, p, px);
        }
        const uint8_t* wk = w + static_cast<size_t>(r0) * ws + static_cast<size_t>(kb) * sizeof(BlockQ8_0);
        for (int64_t i = 0; i < rn; i += kRows) {
          const int mr = static_cast<int>(min64(kRows, rn - i));
          const TileIo io{accbuf + i * kPairs, kPairs, kb == 0, kb + kn == nb,
                          y + static_cast<size_t>(c0) * ldy + static_cast<size_t>(r0 + i), ldy, ncols};
          kTileTable<TileQ8_0>[mr - 1][np - 1](kn, wk + static_cast<size_t>(i) * ws, ws, px, io);
        }
      }
    }
  }
}

}  // namespace avx512_gemm
}  // namespace zen::kernels
