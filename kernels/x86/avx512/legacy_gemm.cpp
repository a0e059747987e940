// AVX-512 register-blocked tile products (the optional TypeOps::gemm) for Q8_0, Q4_0, Q5_0, F16,
// BF16 and F32. A tile of MR weight rows x NR activation rows keeps MR*NR accumulators in zmm
// registers; each step loads every weight row and every activation row once.
//
// Quantized types, one step = two blocks: weights become signed bytes q, activations are made
// unsigned (u = x + 128, a sign-bit flip, once per activation row), and VPDPBUSD starts from
// -128 * sum(q) (once per weight row), so each (row, column) pair costs one VPDPBUSD, one
// conversion, one scale product and one FMA.
// Internal linkage and intrinsics only (see kernels/x86/avx512/legacy.cpp on ODR safety).
// GCC 12's AVX-512 headers self-initialize their _mm512_undefined_* values, which -Wall reports
// as uninitialized once inlined (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

TypeOps& slot(OpsTable& t, DType d) { return reinterpret_cast<TypeOps*>(&t)[static_cast<uint32_t>(d)]; }

uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

__m512i load_pair(const void* a, const void* b) {
  const __m256i lo = _mm256_loadu_si256(static_cast<const __m256i*>(a));
  const __m256i hi = _mm256_loadu_si256(static_cast<const __m256i*>(b));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

__m512i unpack_nibble_pair(const uint8_t* a, const uint8_t* b) {
  const __m256i ab = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(ab, mask);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(ab, 4), mask);
  return _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11),
                                   _mm512_castsi256_si512(hi));
}

__m512 pair_scale(uint16_t a, uint16_t b) { return _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(a)), _mm256_set1_ps(_cvtsh_ss(b)), 1); }

// ---- Quantized policies. A step covers blocks a and b (b == a, scaled by 0, for an odd last block). ----

struct QuantW {
  __m512i q;     // signed bytes
  __m512i bias;  // -128 * sum(q) per group of four
  __m512 d;
};
struct QuantX {
  __m512i u;  // x + 128 as unsigned bytes
  __m512 d;
};

QuantW make_w(__m512i q, uint16_t da, uint16_t db) {
  const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), q);
  return {q, _mm512_sub_epi32(_mm512_setzero_si512(), s), pair_scale(da, db)};
}

struct GemmQ8_0Base {
  static constexpr int64_t kStep = 64;
  using X = QuantX;
  // Activations are Q8_0 for every quantized weight type here.
  static X load_x(const uint8_t* row, int64_t k, int64_t left) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(row) + k / 32;
    const auto* b = left > 32 ? a + 1 : a;
    const __m512i u = _mm512_xor_si512(load_pair(a->qs, b->qs), _mm512_set1_epi8(static_cast<char>(0x80)));
    return {u, pair_scale(a->d, left > 32 ? b->d : 0)};
  }
  static __m512 madd(__m512 acc, const QuantW& w, const QuantX& x) {
    const __m512i isum = _mm512_dpbusd_epi32(w.bias, x.u, w.q);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(w.d, x.d), acc);
  }
};

struct GemmQ8_0 : GemmQ8_0Base {
  using W = QuantW;
  static W load_w(const uint8_t* row, int64_t k, int64_t left) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(row) + k / 32;
    const auto* b = left > 32 ? a + 1 : a;
    return make_w(load_pair(a->qs, b->qs), a->d, b->d);
  }
};

struct GemmQ4_0 : GemmQ8_0Base {
  using W = QuantW;
  static W load_w(const uint8_t* row, int64_t k, int64_t left) {
    const auto* a = reinterpret_cast<const BlockQ4_0*>(row) + k / 32;
    const auto* b = left > 32 ? a + 1 : a;
    const __m512i q = _mm512_sub_epi8(unpack_nibble_pair(a->qs, b->qs), _mm512_set1_epi8(8));
    return make_w(q, a->d, b->d);
  }
};

struct GemmQ5_0 : GemmQ8_0Base {
  using W = QuantW;
  static W load_w(const uint8_t* row, int64_t k, int64_t left) {
    const auto* a = reinterpret_cast<const BlockQ5_0*>(row) + k / 32;
    const auto* b = left > 32 ? a + 1 : a;
    const __mmask64 fifth = static_cast<__mmask64>(load_u32(a->qh)) | static_cast<__mmask64>(load_u32(b->qh)) << 32;
    // q - 16: nibbles whose fifth bit is clear lose 16.
    const __m512i nib = unpack_nibble_pair(a->qs, b->qs);
    const __m512i q = _mm512_mask_sub_epi8(nib, static_cast<__mmask64>(~fifth), nib, _mm512_set1_epi8(16));
    return make_w(q, a->d, b->d);
  }
};

// ---- Float policies: one step = 16 (F32, F16) or 32 (BF16) elements, masked at the end ----

__mmask16 mask16(int64_t left) { return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u); }
__mmask32 mask32(int64_t left) { return left >= 32 ? static_cast<__mmask32>(0xffffffffu) : static_cast<__mmask32>((1ull << left) - 1u); }

struct GemmF32 {
  static constexpr int64_t kStep = 16;
  using W = __m512;
  using X = __m512;
  static __m512 load_w(const uint8_t* row, int64_t k, int64_t left) {
    return _mm512_maskz_loadu_ps(mask16(left), reinterpret_cast<const float*>(row) + k);
  }
  static __m512 load_x(const uint8_t* row, int64_t k, int64_t left) { return load_w(row, k, left); }
  static __m512 madd(__m512 acc, __m512 w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

struct GemmF16 {
  static constexpr int64_t kStep = 16;
  using W = __m512;
  using X = __m512;
  static __m512 load_w(const uint8_t* row, int64_t k, int64_t left) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask16(left), reinterpret_cast<const uint16_t*>(row) + k));
  }
  static __m512 load_x(const uint8_t* row, int64_t k, int64_t left) { return load_w(row, k, left); }
  static __m512 madd(__m512 acc, __m512 w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

struct GemmBF16 {
  static constexpr int64_t kStep = 32;
  using W = __m512bh;
  using X = __m512bh;
  static __m512bh load_w(const uint8_t* row, int64_t k, int64_t left) {
    return (__m512bh)_mm512_maskz_loadu_epi16(mask32(left), reinterpret_cast<const uint16_t*>(row) + k);
  }
  static __m512bh load_x(const uint8_t* row, int64_t k, int64_t left) { return load_w(row, k, left); }
  static __m512 madd(__m512 acc, __m512bh w, __m512bh x) { return _mm512_dpbf16_ps(acc, w, x); }
};

// ---- Tiling ----

// One MR x NR tile: y[j * ldy + i] = dot(w row i, x row j).
template <class K, int MR, int NR>
void tile(int64_t n, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, size_t ldy) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < n; k += K::kStep) {
    const int64_t left = n - k;
    typename K::X xv[NR];
    for (int j = 0; j < NR; ++j) xv[j] = K::load_x(x + j * xs, k, left);
    for (int i = 0; i < MR; ++i) {
      const typename K::W wv = K::load_w(w + i * ws, k, left);
      for (int j = 0; j < NR; ++j) acc[i][j] = K::madd(acc[i][j], wv, xv[j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
}

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

// Tiles of 4 weight rows x 4 activation rows: 16 accumulators of the 32 zmm registers.
template <class K>
void gemm(int64_t n, int64_t nr, int64_t nc, const void* vw, size_t ws, const void* vx, size_t xs, float* y,
          size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(vw);
  const auto* x = static_cast<const uint8_t*>(vx);
  int64_t i = 0;
  for (; i + 4 <= nr; i += 4) row_band<K, 4, 4>(n, nc, w + i * ws, ws, x, xs, y + i, ldy);
  switch (nr - i) {
    case 3: row_band<K, 3, 4>(n, nc, w + i * ws, ws, x, xs, y + i, ldy); break;
    case 2: row_band<K, 2, 4>(n, nc, w + i * ws, ws, x, xs, y + i, ldy); break;
    case 1: row_band<K, 1, 4>(n, nc, w + i * ws, ws, x, xs, y + i, ldy); break;
    default: break;
  }
}

}  // namespace

namespace avx512_legacy {
void fill_gemm(OpsTable& t) {
  slot(t, DType::Q8_0).gemm = gemm<GemmQ8_0>;
  slot(t, DType::Q4_0).gemm = gemm<GemmQ4_0>;
  slot(t, DType::Q5_0).gemm = gemm<GemmQ5_0>;
  slot(t, DType::F32).gemm = gemm<GemmF32>;
  slot(t, DType::F16).gemm = gemm<GemmF16>;
  slot(t, DType::BF16).gemm = gemm<GemmBF16>;
}
}  // namespace avx512_legacy

}  // namespace zen::kernels
