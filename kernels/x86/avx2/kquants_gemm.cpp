// AVX2 gemm tiles for Q4_K, Q5_K and Q6_K weights x Q8_K activations (prompt processing).
// With 16 vector registers the tile is 1 weight row x up to 4 activation rows: per super-block
// the row's levels and scale vectors are unpacked once (into an L1-resident local array) and
// reused for every activation row. The float accumulators and their order are vec_dot's, so
// results are bit-identical to vec_dot.
#include "kernels/quant_k_avx2.h"
#include "kernels/quant_k_x86.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx2 {
namespace {

using TileFn = void (*)(int64_t nb, const uint8_t* w, const uint8_t* x, size_t xs, float* y, size_t ldy);

// Q4_K, and Q5_K (Block = BlockQ5_K: the fifth bit of each level comes from qh).
template <typename Block, int C>
void tile_k4(int64_t nb, const uint8_t* w, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  constexpr bool kHigh = sizeof(Block) == sizeof(BlockQ5_K);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m1 = _mm256_set1_epi8(1);
  __m256 acc[C];
  __m128 acc_min[C];
  for (int c = 0; c < C; ++c) {
    acc[c] = _mm256_setzero_ps();
    acc_min[c] = _mm_setzero_ps();
  }
  const auto* wb = reinterpret_cast<const Block*>(w);
  for (int64_t b = 0; b < nb; ++b) {
    const __m128i sm = k4_scales_mins(wb[b].scales);
    const __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    const __m128i mins = _mm_cvtepu8_epi16(_mm_srli_si128(sm, 8));
    __m256i v[8], s[8];  // 32 levels and the int16 scale of sub-block k
    for (int j = 0; j < 4; ++j) {
      const __m256i q = load256(wb[b].qs + 32 * j);
      v[2 * j] = _mm256_and_si256(q, m4);
      v[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (kHigh) {  // bit 2j (low nibbles) and 2j+1 (high) of qh[l] are worth 16
        const __m256i hb = load256(wb[b].qh);
        v[2 * j] = _mm256_or_si256(v[2 * j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), m1), 4));
        v[2 * j + 1] = _mm256_or_si256(v[2 * j + 1], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), m1), 4));
      }
      s[2 * j] = bcast_i16(sc, 2 * j);
      s[2 * j + 1] = bcast_i16(sc, 2 * j + 1);
    }
    const float dw = _cvtsh_ss(wb[b].d), dmw = _cvtsh_ss(wb[b].dmin);
    for (int c = 0; c < C; ++c) {
      const BlockQ8_K* xb = reinterpret_cast<const BlockQ8_K*>(x + xs * c) + b;
      __m256i sumi = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k)
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(v[k], load256(xb->qs + 32 * k)), s[k]));
      const __m128i mprod = _mm_madd_epi16(mins, bsums_by_32(xb->bsums));
      acc_min[c] = _mm_fmadd_ps(_mm_set1_ps(xb->d * dmw), _mm_cvtepi32_ps(mprod), acc_min[c]);
      acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(xb->d * dw), _mm256_cvtepi32_ps(sumi), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) y[ldy * c] = hsum_ps(acc[c]) - hsum128(acc_min[c]);
}

template <int C>
void tile_q6_K(int64_t nb, const uint8_t* w, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  __m256 acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  const auto* wb = reinterpret_cast<const BlockQ6_K*>(w);
  for (int64_t b = 0; b < nb; ++b) {
    const __m128i sc8 = load128(wb[b].scales);
    const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
    __m256i v[8], s[8];  // 32 levels (q + 32) and the scales of sub-blocks 2k, 2k+1
    q6_levels(wb[b].ql, wb[b].qh, 0, v);
    q6_levels(wb[b].ql, wb[b].qh, 1, v + 4);
    for (int k = 0; k < 8; ++k) s[k] = pair_i8(sc8, 2 * k);
    const float dw = _cvtsh_ss(wb[b].d);
    for (int c = 0; c < C; ++c) {
      const BlockQ8_K* xb = reinterpret_cast<const BlockQ8_K*>(x + xs * c) + b;
      __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16, load256(xb->bsums)), 5));
      for (int k = 0; k < 8; ++k)
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(v[k], load256(xb->qs + 32 * k)), s[k]));
      acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(xb->d * dw), _mm256_cvtepi32_ps(sumi), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) y[ldy * c] = hsum_ps(acc[c]);
}

// One weight row at a time against groups of up to 4 activation rows.
void run_tiles(const TileFn (&tiles)[4], int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x,
               size_t xs, float* y, size_t ldy) {
  const auto* wp = static_cast<const uint8_t*>(w);
  const auto* xp = static_cast<const uint8_t*>(x);
  for (int64_t c0 = 0; c0 < nc; c0 += 4) {
    const int64_t cn = nc - c0 < 4 ? nc - c0 : 4;
    for (int64_t r = 0; r < nr; ++r)
      tiles[cn - 1](n / QK_K, wp + ws * static_cast<size_t>(r), xp + xs * static_cast<size_t>(c0), xs,
                    y + ldy * static_cast<size_t>(c0) + static_cast<size_t>(r), ldy);
  }
}

template <typename Block>
constexpr TileFn kTilesK4[4] = {tile_k4<Block, 1>, tile_k4<Block, 2>, tile_k4<Block, 3>, tile_k4<Block, 4>};
constexpr TileFn kTilesQ6K[4] = {tile_q6_K<1>, tile_q6_K<2>, tile_q6_K<3>, tile_q6_K<4>};

}  // namespace

void gemm_q4_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
               float* y, size_t ldy) {
  run_tiles(kTilesK4<BlockQ4_K>, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

void gemm_q5_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
               float* y, size_t ldy) {
  run_tiles(kTilesK4<BlockQ5_K>, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

void gemm_q6_K(int64_t n, int64_t nr, int64_t nc, const void* w, size_t w_stride, const void* x, size_t x_stride,
               float* y, size_t ldy) {
  run_tiles(kTilesQ6K, n, nr, nc, w, w_stride, x, x_stride, y, ldy);
}

}  // namespace zen::kernels::kq_avx2
