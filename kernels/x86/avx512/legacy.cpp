// AVX-512 (F/BW/VL/DQ + VNNI) dot products of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 against their
// activation type, and gemm tiles for Q4_0, Q5_0 and the float types (Q8_0: gemm_q8_0.cpp). Two blocks go
// through one 512-bit VPDPBUSD (unsigned x signed bytes, summed in groups of four into int32). Signed weights use an offset: with u = q + c (c = 8, 16 or 128
// chosen so that u is a valid unsigned byte), sum(q * x) = sum(u * x) - c * sum(x), both sums
// computed exactly by VPDPBUSD.
//
// ODR safety: this file is compiled with AVX-512 flags; everything here has internal linkage and
// uses only intrinsics, never inline functions or templates shared with other translation units
// (a linker could otherwise keep this copy and run AVX-512 code on a CPU without it).
// GCC 12's AVX-512 headers self-initialize their _mm512_undefined_* values, which -Wall reports
// as uninitialized once inlined (GCC bug 105593, fixed in GCC 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"

namespace zen::kernels {
namespace avx512_legacy {
void fill_float(OpsTable& t);  // kernels/x86/avx512/legacy_float.cpp
}  // namespace avx512_legacy
namespace avx512_gemm {
void gemm_q8_0(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
               size_t ldy);  // kernels/x86/avx512/gemm_q8_0.cpp
void gemm_f16(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
              size_t ldy);  // kernels/x86/avx512/gemm_float.cpp
void gemm_bf16(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
               size_t ldy);  // kernels/x86/avx512/gemm_float.cpp
}  // namespace avx512_gemm

namespace {

TypeOps& slot(OpsTable& t, DType d) {
  // std::array<TypeOps, N> holds exactly a TypeOps[N]; indexing it by hand avoids
  // instantiating std::array::operator[] in this ISA-specific translation unit.
  return reinterpret_cast<TypeOps*>(&t)[static_cast<uint32_t>(d)];
}

float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// 32 bytes of block a in the low half, 32 bytes of block b in the high half.
__m512i load_pair(const void* a, const void* b) {
  const __m256i lo = _mm256_loadu_si256(static_cast<const __m256i*>(a));
  const __m256i hi = _mm256_loadu_si256(static_cast<const __m256i*>(b));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Nibbles of two blocks in element order: [a low, a high, b low, b high], each 16 bytes.
__m512i unpack_nibble_pair(const uint8_t* a, const uint8_t* b) {
  const __m256i ab = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(a)));
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(ab, mask);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(ab, 4), mask);
  return _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11),
                                   _mm512_castsi256_si512(hi));
}

// Five-bit values of two Q5 blocks: the nibbles plus 16 where the qh bit is set.
__m512i unpack_q5_pair(const uint8_t* qs_a, const uint8_t* qh_a, const uint8_t* qs_b, const uint8_t* qh_b) {
  const __mmask64 fifth = static_cast<__mmask64>(load_u32(qh_a)) | static_cast<__mmask64>(load_u32(qh_b)) << 32;
  const __m512i nib = unpack_nibble_pair(qs_a, qs_b);
  return _mm512_mask_add_epi8(nib, fifth, nib, _mm512_set1_epi8(16));
}

// Exact sum(u * x) - c * sum(x) per group of four bytes.
__m512i dot_offset(__m512i u, __m512i x, char c) {
  const __m512i ux = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x);
  return _mm512_sub_epi32(ux, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(c), x));
}

__m512i dot_unsigned(__m512i u, __m512i x) { return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, x); }

__m512 pair_scale(float a, float b) {
  return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

// ---- Per-type int32 partial sums of two blocks (wa, xa) and (wb, xb) ----

// Q8_0 . Q8_0 and Q8_1 . Q8_1: u = q + 128 (flip the sign bit).
template <class Block>
struct DotQ8 {
  using WB = Block;
  using XB = Block;
  static constexpr bool kOffset = false;
  static __m512i isum(const WB& wa, const WB& wb, const XB& xa, const XB& xb) {
    const __m512i u = _mm512_xor_si512(load_pair(wa.qs, wb.qs), _mm512_set1_epi8(static_cast<char>(0x80)));
    return dot_offset(u, load_pair(xa.qs, xb.qs), static_cast<char>(0x80));
  }
};

struct DotQ4_0 {
  using WB = BlockQ4_0;
  using XB = BlockQ8_0;
  static constexpr bool kOffset = false;
  static __m512i isum(const WB& wa, const WB& wb, const XB& xa, const XB& xb) {
    return dot_offset(unpack_nibble_pair(wa.qs, wb.qs), load_pair(xa.qs, xb.qs), 8);
  }
};

struct DotQ4_1 {
  using WB = BlockQ4_1;
  using XB = BlockQ8_1;
  static constexpr bool kOffset = true;
  static __m512i isum(const WB& wa, const WB& wb, const XB& xa, const XB& xb) {
    return dot_unsigned(unpack_nibble_pair(wa.qs, wb.qs), load_pair(xa.qs, xb.qs));
  }
};

struct DotQ5_0 {
  using WB = BlockQ5_0;
  using XB = BlockQ8_0;
  static constexpr bool kOffset = false;
  static __m512i isum(const WB& wa, const WB& wb, const XB& xa, const XB& xb) {
    return dot_offset(unpack_q5_pair(wa.qs, wa.qh, wb.qs, wb.qh), load_pair(xa.qs, xb.qs), 16);
  }
};

struct DotQ5_1 {
  using WB = BlockQ5_1;
  using XB = BlockQ8_1;
  static constexpr bool kOffset = true;
  static __m512i isum(const WB& wa, const WB& wb, const XB& xa, const XB& xb) {
    return dot_unsigned(unpack_q5_pair(wa.qs, wa.qh, wb.qs, wb.qh), load_pair(xa.qs, xb.qs));
  }
};

// m_w * s_x of one block (the offset formats only).
template <class K>
float block_offset(const typename K::WB& w, const typename K::XB& x) {
  if constexpr (K::kOffset) return half_to_float(w.m) * half_to_float(x.s);
  return 0.0f;
}

// Blocks go in pairs; an odd last block is paired with itself and its second copy scaled by 0.
template <class K>
float vec_dot(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const typename K::WB*>(vw);
  const auto* x = static_cast<const typename K::XB*>(vx);
  const int64_t nb = n / 32;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  float offsets = 0.0f;
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m512 d0 = pair_scale(half_to_float(w[b].d) * half_to_float(x[b].d),
                                 half_to_float(w[b + 1].d) * half_to_float(x[b + 1].d));
    const __m512 d1 = pair_scale(half_to_float(w[b + 2].d) * half_to_float(x[b + 2].d),
                                 half_to_float(w[b + 3].d) * half_to_float(x[b + 3].d));
    acc0 = _mm512_fmadd_ps(d0, _mm512_cvtepi32_ps(K::isum(w[b], w[b + 1], x[b], x[b + 1])), acc0);
    acc1 = _mm512_fmadd_ps(d1, _mm512_cvtepi32_ps(K::isum(w[b + 2], w[b + 3], x[b + 2], x[b + 3])), acc1);
    for (int k = 0; k < 4; ++k) offsets += block_offset<K>(w[b + k], x[b + k]);
  }
  for (; b < nb; b += 2) {
    const int64_t b1 = b + 1 < nb ? b + 1 : b;
    const float d1 = b + 1 < nb ? half_to_float(w[b1].d) * half_to_float(x[b1].d) : 0.0f;
    const __m512 d = pair_scale(half_to_float(w[b].d) * half_to_float(x[b].d), d1);
    acc0 = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(K::isum(w[b], w[b1], x[b], x[b1])), acc0);
    offsets += block_offset<K>(w[b], x[b]);
    if (b1 != b) offsets += block_offset<K>(w[b1], x[b1]);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + offsets;
}

// ---- gemm: register-blocked tiles (the optional TypeOps::gemm) for Q4_0, Q5_0, F32 and F16
// decode (Q8_0, BF16 and F16 batches: gemm_q8_0.cpp, gemm_float.cpp). A tile of MR weight rows
// x NR activation rows keeps MR*NR accumulators in zmm registers; each step loads every weight
// row and every activation row once.
//
// Quantized types, one step = two blocks: weights become signed bytes q, activations are made
// unsigned (u = x + 128, a sign-bit flip, once per activation row), and VPDPBUSD starts from
// -128 * sum(q) (once per weight row), so each (row, column) pair costs one VPDPBUSD, one
// conversion, one scale product and one FMA.

__m512 pair_scale_half(uint16_t a, uint16_t b) { return pair_scale(_cvtsh_ss(a), _cvtsh_ss(b)); }

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
  return {q, _mm512_sub_epi32(_mm512_setzero_si512(), s), pair_scale_half(da, db)};
}

struct GemmQ8_0Base {
  static constexpr int64_t kStep = 64;  // two blocks
  using X = QuantX;
  // Activations are Q8_0 for every quantized weight type here.
  static X load_x(const uint8_t* row, int64_t k, int64_t left) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(row) + k / 32;
    const auto* b = left > 32 ? a + 1 : a;
    const __m512i u = _mm512_xor_si512(load_pair(a->qs, b->qs), _mm512_set1_epi8(static_cast<char>(0x80)));
    return {u, pair_scale_half(a->d, left > 32 ? b->d : 0)};
  }
  static __m512 madd(__m512 acc, const QuantW& w, const QuantX& x) {
    const __m512i isum = _mm512_dpbusd_epi32(w.bias, x.u, w.q);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(w.d, x.d), acc);
  }
};

struct GemmQ4_0 : GemmQ8_0Base {
  using W = QuantW;
  static constexpr size_t kWBytes = 2 * sizeof(BlockQ4_0);  // weight bytes per step
  static W load_w(const uint8_t* row, int64_t k, int64_t left) {
    const auto* a = reinterpret_cast<const BlockQ4_0*>(row) + k / 32;
    const auto* b = left > 32 ? a + 1 : a;
    const __m512i q = _mm512_sub_epi8(unpack_nibble_pair(a->qs, b->qs), _mm512_set1_epi8(8));
    return make_w(q, a->d, b->d);
  }
};

struct GemmQ5_0 : GemmQ8_0Base {
  using W = QuantW;
  static constexpr size_t kWBytes = 2 * sizeof(BlockQ5_0);  // weight bytes per step
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

// ---- Float policies: one step = 16 elements, masked at the end (BF16: gemm_float.cpp) ----

__mmask16 mask16(int64_t left) { return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u); }

struct GemmF32 {
  static constexpr int64_t kStep = 16;
  static constexpr size_t kWBytes = 64;
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
  static constexpr size_t kWBytes = 32;
  using W = __m512;
  using X = __m512;
  static __m512 load_w(const uint8_t* row, int64_t k, int64_t left) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask16(left), reinterpret_cast<const uint16_t*>(row) + k));
  }
  static __m512 load_x(const uint8_t* row, int64_t k, int64_t left) { return load_w(row, k, left); }
  static __m512 madd(__m512 acc, __m512 w, __m512 x) { return _mm512_fmadd_ps(w, x, acc); }
};

// The rows of a tile are short side-by-side streams the hardware prefetcher misses: each step
// fetches the same bytes of the rows two tiles ahead (prefetches never fault past the end).
void prefetch_ahead(const uint8_t* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(p + bytes - 1), _MM_HINT_T0);
}

// ---- Q8_0 in llama.cpp's summation order ----
// Q8_0 is the format where results are most sensitive to float order (its quantization noise
// is small, so a flipped activation rounding downstream is visible). vec_dot keeps the
// reference's order exactly: per block, eight int32 lanes of four products each, one FMA into
// an 8-lane float accumulator per block in sequence, then a fixed horizontal sum. Its gemm
// (kernels/x86/avx512/gemm_q8_0.cpp) keeps the same order.

float hsum8(__m256 v) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// Signed x signed bytes via VNNI: |w| (unsigned) times sign(w) * x.
__m256 q8_lanes(const int8_t* w, const int8_t* x) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)));
}

float vec_dot_q8_0_ordered(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const BlockQ8_0*>(vw);
  const auto* x = static_cast<const BlockQ8_0*>(vx);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b)
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(w[b].d) * half_to_float(x[b].d)), q8_lanes(w[b].qs, x[b].qs), acc);
  return hsum8(acc);
}

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
      prefetch_ahead(w + i * ws + static_cast<size_t>(k / K::kStep) * K::kWBytes + ws * MR * 2, K::kWBytes);
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

// F16 with fewer activation rows than a tile (decode): the weights stream from memory once
// and the plain tiles read them best; batches take the blocked kernel.
void gemm_f16(int64_t n, int64_t nr, int64_t nc, const void* w, size_t ws, const void* x, size_t xs, float* y,
              size_t ldy) {
  if (nc < 4)
    gemm<GemmF16>(n, nr, nc, w, ws, x, xs, y, ldy);
  else
    avx512_gemm::gemm_f16(n, nr, nc, w, ws, x, xs, y, ldy);
}

}  // namespace

void fill_legacy_avx512(OpsTable& t) {
  slot(t, DType::Q8_0).vec_dot = vec_dot_q8_0_ordered;
  slot(t, DType::Q8_1).vec_dot = vec_dot<DotQ8<BlockQ8_1>>;
  slot(t, DType::Q4_0).vec_dot = vec_dot<DotQ4_0>;
  slot(t, DType::Q4_1).vec_dot = vec_dot<DotQ4_1>;
  slot(t, DType::Q5_0).vec_dot = vec_dot<DotQ5_0>;
  slot(t, DType::Q5_1).vec_dot = vec_dot<DotQ5_1>;
  slot(t, DType::Q8_0).gemm = avx512_gemm::gemm_q8_0;
  slot(t, DType::Q8_0).gemm_exact = true;
  slot(t, DType::Q4_0).gemm = gemm<GemmQ4_0>;
  slot(t, DType::Q5_0).gemm = gemm<GemmQ5_0>;
  slot(t, DType::F32).gemm = gemm<GemmF32>;
  slot(t, DType::F16).gemm = gemm_f16;
  slot(t, DType::BF16).gemm = avx512_gemm::gemm_bf16;
  avx512_legacy::fill_float(t);
}

}  // namespace zen::kernels
