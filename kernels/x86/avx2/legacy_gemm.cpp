// AVX2 register-blocked tile products (the optional TypeOps::gemm) for Q8_0, Q4_0 and F16:
// each weight block and each activation block is loaded once per tile and used MR x NR times.
// Internal linkage and intrinsics only (see kernels/x86/avx2/legacy.cpp on ODR safety).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

TypeOps& slot(OpsTable& t, DType d) { return reinterpret_cast<TypeOps*>(&t)[static_cast<uint32_t>(d)]; }

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// ---- Per-type policies: how one step (a block, or 8 floats) of a weight row and of an
// activation row is loaded, and how their product is accumulated. ----

// Signed int8 weights against Q8_0 activations. A prepared weight keeps |q| and q (for the sign).
struct SignedW {
  __m256i abs, q;
  float d;
};
struct Q8X {
  __m256i q;
  float d;
};

__m256 madd_signed(__m256 acc, const SignedW& w, const Q8X& x) {
  const __m256i p16 = _mm256_maddubs_epi16(w.abs, _mm256_sign_epi8(x.q, w.q));
  const __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
  return _mm256_fmadd_ps(_mm256_set1_ps(w.d * x.d), _mm256_cvtepi32_ps(p32), acc);
}

struct GemmQ8_0 {
  using W = SignedW;
  using X = Q8X;
  static constexpr int64_t kStep = QK8_0;
  static constexpr size_t kWBytes = sizeof(BlockQ8_0), kXBytes = sizeof(BlockQ8_0);  // per step
  static constexpr bool kF16Tail = false;
  static W load_w(const uint8_t* p) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(p);
    const __m256i q = load32(b->qs);
    return {_mm256_sign_epi8(q, q), q, _cvtsh_ss(b->d)};
  }
  static X load_x(const uint8_t* p) {
    const auto* b = reinterpret_cast<const BlockQ8_0*>(p);
    return {load32(b->qs), _cvtsh_ss(b->d)};
  }
  static __m256 madd(__m256 acc, const W& w, const X& x) { return madd_signed(acc, w, x); }
};

struct GemmQ4_0 {
  using W = SignedW;
  using X = Q8X;
  static constexpr int64_t kStep = QK4_0;
  static constexpr size_t kWBytes = sizeof(BlockQ4_0), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kF16Tail = false;
  static W load_w(const uint8_t* p) {
    const auto* b = reinterpret_cast<const BlockQ4_0*>(p);
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
    const __m256i q = _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
    return {_mm256_sign_epi8(q, q), q, _cvtsh_ss(b->d)};
  }
  static X load_x(const uint8_t* p) { return GemmQ8_0::load_x(p); }
  static __m256 madd(__m256 acc, const W& w, const X& x) { return madd_signed(acc, w, x); }
};

struct GemmF16 {
  using W = __m256;
  using X = __m256;
  static constexpr int64_t kStep = 8;
  static constexpr size_t kWBytes = 16, kXBytes = 16;
  static constexpr bool kF16Tail = true;  // rows need not be a multiple of 8
  static __m256 load_w(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static __m256 load_x(const uint8_t* p) { return load_w(p); }
  static __m256 madd(__m256 acc, __m256 w, __m256 x) { return _mm256_fmadd_ps(w, x, acc); }
};

// Elements of an F16 row past the last full step of 8.
float f16_tail(int64_t from, int64_t n, const uint8_t* w, const uint8_t* x) {
  const auto* wh = reinterpret_cast<const uint16_t*>(w);
  const auto* xh = reinterpret_cast<const uint16_t*>(x);
  float s = 0.0f;
  for (int64_t k = from; k < n; ++k) s += _cvtsh_ss(wh[k]) * _cvtsh_ss(xh[k]);
  return s;
}

// One MR x NR tile: y[j * ldy + i] = dot(w row i, x row j).
template <class K, int MR, int NR>
void tile(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  const int64_t steps = n / K::kStep;
  for (int64_t s = 0; s < steps; ++s) {
    const size_t woff = static_cast<size_t>(s) * K::kWBytes, xoff = static_cast<size_t>(s) * K::kXBytes;
    typename K::X xv[NR];
    for (int j = 0; j < NR; ++j) xv[j] = K::load_x(x + j * xs + xoff);
    for (int i = 0; i < MR; ++i) {
      const typename K::W wv = K::load_w(w + i * ws + woff);
      for (int j = 0; j < NR; ++j) acc[i][j] = K::madd(acc[i][j], wv, xv[j]);
    }
  }
  const int64_t done = steps * K::kStep;
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float v = hsum(acc[i][j]);
      if constexpr (K::kF16Tail) v += f16_tail(done, n, w + i * ws, x + j * xs);
      y[j * ldy + i] = v;
    }
}

// All tiles of MR weight rows: NR columns at a time, then the leftover columns.
template <class K, int MR, int NR>
void row_band(int64_t n, int64_t nc, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y,
              size_t ldy) {
  int64_t j = 0;
  for (; j + NR <= nc; j += NR) tile<K, MR, NR>(n, w, ws, x + j * xs, xs, y + j * ldy, ldy);
  const uint8_t* xr = x + j * xs;
  float* yr = y + j * ldy;
  switch (nc - j) {
    case 3: tile<K, MR, 3>(n, w, ws, xr, xs, yr, ldy); break;
    case 2: tile<K, MR, 2>(n, w, ws, xr, xs, yr, ldy); break;
    case 1: tile<K, MR, 1>(n, w, ws, xr, xs, yr, ldy); break;
    default: break;
  }
}

// Tiles of at most 3 weight rows x 4 activation rows keep the accumulators in 12 of the 16
// ymm registers.
template <class K>
void gemm(int64_t n, int64_t nr, int64_t nc, const void* vw, size_t ws, const void* vx, size_t xs, float* y,
          size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* x = static_cast<const uint8_t*>(vx);
  int64_t i = 0;
  for (; i + 3 <= nr; i += 3) row_band<K, 3, 4>(n, nc, w + i * ws, ws, x, xs, y + i, ldy);
  switch (nr - i) {
    case 2: row_band<K, 2, 4>(n, nc, w + i * ws, ws, x, xs, y + i, ldy); break;
    case 1: row_band<K, 1, 4>(n, nc, w + i * ws, ws, x, xs, y + i, ldy); break;
    default: break;
  }
}

}  // namespace

namespace avx2_legacy {
void fill_gemm(OpsTable& t) {
  slot(t, DType::Q8_0).gemm = gemm<GemmQ8_0>;
  slot(t, DType::Q4_0).gemm = gemm<GemmQ4_0>;
  slot(t, DType::F16).gemm = gemm<GemmF16>;
}
}  // namespace avx2_legacy

}  // namespace zen::kernels
