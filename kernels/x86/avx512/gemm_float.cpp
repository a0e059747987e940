// AVX-512 gemm for F16 and BF16 weights (prompt processing).
//
// F16 (activations F16, as llama.cpp converts them): FP32 FMAs. Weights are widened with
// VCVTPH2PS as they are read, once per tile; the activations are widened once per call and K
// chunk into a small float buffer, so the inner step is one conversion per weight row and one
// FMA (activation operand from L1) per (row, column). Accumulators live in a buffer between
// K chunks. Sums are 16 lanes per (row, column), reduced at the end: not vec_dot's order
// (four accumulators), so gemm_exact stays false and every row of a batch goes through gemm.
//
// BF16 (activations BF16): VDPBF16PS, 32 products per instruction, straight from both rows.
//
// Tiles are 4 weight rows x 4 activation rows (16 accumulators), with the next tile's weight
// rows prefetched; only the last step of a row is masked.
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
void gemm_f16(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
              size_t ldy);
void gemm_bf16(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
               size_t ldy);
}  // namespace avx512_gemm

namespace {

constexpr int kRows = 4;           // weight rows per tile
constexpr int kCols = 4;           // activation rows per tile
constexpr int64_t kChunk = 1024;   // F16: elements per K chunk
constexpr int64_t kColGroup = 8;   // F16: activation rows widened together
constexpr int64_t kRowGroup = 64;  // F16: weight rows whose accumulators are kept between chunks

__mmask16 first16(int64_t k) { return k >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << k) - 1u); }
__mmask32 first32(int64_t k) {
  return k >= 32 ? static_cast<__mmask32>(0xffffffffu) : static_cast<__mmask32>((1ull << k) - 1u);
}

// ---- F16 ----

// Activation rows of one column group, elements of one K chunk, as floats; zero past the
// chunk's end up to the next multiple of 16.
struct WideX {
  alignas(64) float v[kColGroup][kChunk];
};

void widen(const uint16_t* src, int64_t kn, float* dst) {
  for (int64_t k = 0; k < kn; k += 16)
    _mm512_store_ps(dst + k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first16(kn - k), src + k)));
}

// Rows i of w (elements [0, kn)) against widened activation rows j.
struct TileF16 {
  using Fn = void (*)(int64_t, const uint16_t*, size_t, const float (*)[kChunk], const TileIo&);
  template <int MR, int NR>
  static void run(int64_t kn, const uint16_t* w, size_t ws, const float (*xw)[kChunk], const TileIo& io);
};

template <int MR, int NR>
void TileF16::run(int64_t kn, const uint16_t* w, size_t ws, const float (*xw)[kChunk], const TileIo& io) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = io.first ? _mm512_setzero_ps() : io.acc[i * io.stride + j];
  const int64_t full = kn & ~int64_t{15};
  for (int64_t k = 0; k < full; k += 16) {
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const uint16_t* wr = w + static_cast<size_t>(i) * ws + k;
      _mm_prefetch(reinterpret_cast<const char*>(wr + kRows * ws), _MM_HINT_T1);
      const __m512 wv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr)));
#pragma GCC unroll 4
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(wv, _mm512_load_ps(xw[j] + k), acc[i][j]);
    }
  }
  if (full < kn) {
    const __mmask16 m = first16(kn - full);
    for (int i = 0; i < MR; ++i) {
      const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + static_cast<size_t>(i) * ws + full));
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(wv, _mm512_load_ps(xw[j] + full), acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      if (io.last)
        io.y[static_cast<size_t>(j) * io.ldy + static_cast<size_t>(i)] = _mm512_reduce_add_ps(acc[i][j]);
      else
        io.acc[i * io.stride + j] = acc[i][j];
    }
}

// ---- BF16 ----

struct TileBf16 {
  using Fn = void (*)(int64_t, const uint16_t*, size_t, const uint16_t*, size_t, float*, size_t);
  template <int MR, int NR>
  static void run(int64_t n, const uint16_t* w, size_t ws, const uint16_t* x, size_t xs, float* y, size_t ldy);
};

template <int MR, int NR>
void TileBf16::run(int64_t n, const uint16_t* w, size_t ws, const uint16_t* x, size_t xs, float* y, size_t ldy) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  const int64_t full = n & ~int64_t{31};
  for (int64_t k = 0; k < full; k += 32) {
    __m512bh xv[NR];
    for (int j = 0; j < NR; ++j) xv[j] = (__m512bh)_mm512_loadu_si512(x + static_cast<size_t>(j) * xs + k);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const uint16_t* wr = w + static_cast<size_t>(i) * ws + k;
      _mm_prefetch(reinterpret_cast<const char*>(wr + kRows * ws), _MM_HINT_T1);
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(wr);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv, xv[j]);
    }
  }
  if (full < n) {
    const __mmask32 m = first32(n - full);
    __m512bh xv[NR];
    for (int j = 0; j < NR; ++j) xv[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, x + static_cast<size_t>(j) * xs + full);
    for (int i = 0; i < MR; ++i) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w + static_cast<size_t>(i) * ws + full);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv, xv[j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[static_cast<size_t>(j) * ldy + static_cast<size_t>(i)] = _mm512_reduce_add_ps(acc[i][j]);
}

}  // namespace

namespace avx512_gemm {

void gemm_f16(int64_t n, int64_t nr, int64_t nc, const void* vw, size_t ws, const void* vx, size_t xs, float* y,
              size_t ldy) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* x = static_cast<const uint16_t*>(vx);
  const size_t wse = ws / sizeof(uint16_t), xse = xs / sizeof(uint16_t);
  WideX xw;
  __m512 accbuf[kRowGroup * kColGroup];
  for (int64_t c0 = 0; c0 < nc; c0 += kColGroup) {
    const int64_t cn = min64(kColGroup, nc - c0);
    for (int64_t r0 = 0; r0 < nr; r0 += kRowGroup) {
      const int64_t rn = min64(kRowGroup, nr - r0);
      for (int64_t k0 = 0; k0 < n; k0 += kChunk) {
        const int64_t kn = min64(kChunk, n - k0);
        for (int64_t j = 0; j < cn; ++j) widen(x + static_cast<size_t>(c0 + j) * xse + static_cast<size_t>(k0), kn, xw.v[j]);
        const uint16_t* wk = w + static_cast<size_t>(r0) * wse + static_cast<size_t>(k0);
        for (int64_t i = 0; i < rn; i += kRows) {
          const int64_t mr = min64(kRows, rn - i);
          for (int64_t j = 0; j < cn; j += kCols) {
            const TileIo io{accbuf + i * kColGroup + j, kColGroup, k0 == 0, k0 + kn == n,
                            y + static_cast<size_t>(c0 + j) * ldy + static_cast<size_t>(r0 + i), ldy, cn - j};
            kTileTable<TileF16>[mr - 1][min64(kCols, cn - j) - 1](kn, wk + static_cast<size_t>(i) * wse, wse,
                                                                   xw.v + j, io);
          }
        }
      }
    }
  }
}

void gemm_bf16(int64_t n, int64_t nr, int64_t nc, const void* vw, size_t ws, const void* vx, size_t xs, float* y,
               size_t ldy) {
  const auto* w = static_cast<const uint16_t*>(vw);
  const auto* x = static_cast<const uint16_t*>(vx);
  const size_t wse = ws / sizeof(uint16_t), xse = xs / sizeof(uint16_t);
  for (int64_t i = 0; i < nr; i += kRows) {
    const int64_t mr = min64(kRows, nr - i);
    for (int64_t j = 0; j < nc; j += kCols) {
      const int64_t cn = min64(kCols, nc - j);
      kTileTable<TileBf16>[mr - 1][cn - 1](n, w + static_cast<size_t>(i) * wse, wse, x + static_cast<size_t>(j) * xse,
                                           xse, y + static_cast<size_t>(j) * ldy + static_cast<size_t>(i), ldy);
    }
  }
}

}  // namespace avx512_gemm
}  // namespace zen::kernels
