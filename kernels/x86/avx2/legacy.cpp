// AVX2 (+FMA, F16C) kernels for the legacy block formats: Q8_0/Q8_1 activation quantizers, the
// dot products of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 against their activation type, and gemm
// tiles for Q8_0, Q4_0 and F16.
//
// ODR safety: this file is compiled with -mavx2; everything here has internal linkage and uses
// only intrinsics, never inline functions or templates shared with other translation units
// (a linker could otherwise keep this copy and run AVX2 code on a CPU without it).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"

namespace zen::kernels {
namespace avx2_legacy {
void fill_float(OpsTable& t);  // kernels/x86/avx2/legacy_float.cpp
}  // namespace avx2_legacy

namespace {

TypeOps& slot(OpsTable& t, DType d) {
  // std::array<TypeOps, N> holds exactly a TypeOps[N]; indexing it by hand avoids
  // instantiating std::array::operator[] in this ISA-specific translation unit.
  return reinterpret_cast<TypeOps*>(&t)[static_cast<uint32_t>(d)];
}

float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// 16 bytes of packed nibbles -> 32 bytes in element order: low nibbles, then high nibbles.
__m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Byte j = 0xFF where bit j of the little-endian u32 at p is set, else 0.
__m256i bits_to_bytes(const uint8_t* p) {
  const uint32_t bits = static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                        static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int32_t>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

// Eight int32 partial sums of u[i] * s[i] (u unsigned bytes, s signed; no saturation for
// |u| <= 128 and |s| <= 127).
__m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Same for two signed byte vectors; the sign moves onto x, which must not hold -128 (true for
// every activation our quantizers write). w may hold any byte.
__m256i dot_s8s8(__m256i w, __m256i x) { return dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)); }

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// ---- Activation quantizers ----

// round(v) with halves away from zero, as std::round (exact: v - trunc(v) is representable).
__m256 round_half_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(_mm256_set1_ps(1.0f), sign)));
}

// One block of 32 floats -> 32 int8 at qs; returns the float d; sum = sum of the q's.
float quantize_block_q8(const float* x, int8_t* qs, int32_t& sum) {
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_loadu_ps(x + 8 * k);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v[k]));
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float d = _mm_cvtss_f32(m) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  __m256i q[4];
  for (int k = 0; k < 4; ++k)
    q[k] = _mm256_cvtps_epi32(round_half_away(_mm256_mul_ps(v[k], _mm256_set1_ps(id))));
  sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
  // Pack 32 -> 16 -> 8 bits; the packs interleave 128-bit lanes, the permute undoes it.
  const __m256i p16a = _mm256_packs_epi32(q[0], q[1]);
  const __m256i p16b = _mm256_packs_epi32(q[2], q[3]);
  const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs),
                      _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  return d;
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / QK8_0; ++b) {
    int32_t sum;
    const float d = quantize_block_q8(src + b * QK8_0, y[b].qs, sum);
    y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
  }
}

void quantize_q8_1(const float* src, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t b = 0; b < n / QK8_1; ++b) {
    int32_t sum;
    const float d = quantize_block_q8(src + b * QK8_1, y[b].qs, sum);
    y[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    y[b].s = _cvtss_sh(d * static_cast<float>(sum), _MM_FROUND_TO_NEAREST_INT);
  }
}

// ---- Dot products: per block, eight int32 partial sums scaled by d_w * d_x ----

// Q8_0 . Q8_0 and Q8_1 . Q8_1.
template <class Block>
struct DotQ8 {
  using WB = Block;
  using XB = Block;
  static constexpr bool kOffset = false;
  static __m256i isum(const WB& w, const XB& x) { return dot_s8s8(load32(w.qs), load32(x.qs)); }
};

struct DotQ4_0 {
  using WB = BlockQ4_0;
  using XB = BlockQ8_0;
  static constexpr bool kOffset = false;
  static __m256i isum(const WB& w, const XB& x) {
    return dot_s8s8(_mm256_sub_epi8(unpack_nibbles(w.qs), _mm256_set1_epi8(8)), load32(x.qs));
  }
};

struct DotQ4_1 {
  using WB = BlockQ4_1;
  using XB = BlockQ8_1;
  static constexpr bool kOffset = true;
  static __m256i isum(const WB& w, const XB& x) { return dot_u8s8(unpack_nibbles(w.qs), load32(x.qs)); }
};

struct DotQ5_0 {
  using WB = BlockQ5_0;
  using XB = BlockQ8_0;
  static constexpr bool kOffset = false;
  static __m256i isum(const WB& w, const XB& x) {
    // q - 16 as a signed byte: a nibble whose fifth bit is clear gets 0xF0 (i.e. minus 16).
    const __m256i high = _mm256_andnot_si256(bits_to_bytes(w.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
    return dot_s8s8(_mm256_or_si256(unpack_nibbles(w.qs), high), load32(x.qs));
  }
};

struct DotQ5_1 {
  using WB = BlockQ5_1;
  using XB = BlockQ8_1;
  static constexpr bool kOffset = true;
  static __m256i isum(const WB& w, const XB& x) {
    const __m256i high = _mm256_and_si256(bits_to_bytes(w.qh), _mm256_set1_epi8(0x10));
    return dot_u8s8(_mm256_or_si256(unpack_nibbles(w.qs), high), load32(x.qs));
  }
};

// m_w * s_x of one block (the offset formats only).
template <class K>
float block_offset(const typename K::WB& w, const typename K::XB& x) {
  if constexpr (K::kOffset) return half_to_float(w.m) * half_to_float(x.s);
  return 0.0f;
}

template <class K>
__m256 scaled(const typename K::WB& w, const typename K::XB& x, __m256 acc) {
  const __m256 d = _mm256_set1_ps(half_to_float(w.d) * half_to_float(x.d));
  return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(K::isum(w, x)), acc);
}

// Two accumulators so that consecutive blocks do not wait on each other's FMA.
template <class K>
float vec_dot(int64_t n, const void* vw, const void* vx) {
  const auto* w = static_cast<const typename K::WB*>(vw);
  const auto* x = static_cast<const typename K::XB*>(vx);
  const int64_t nb = n / 32;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float offsets = 0.0f;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    acc0 = scaled<K>(w[b], x[b], acc0);
    acc1 = scaled<K>(w[b + 1], x[b + 1], acc1);
    offsets += block_offset<K>(w[b], x[b]) + block_offset<K>(w[b + 1], x[b + 1]);
  }
  if (b < nb) {
    acc0 = scaled<K>(w[b], x[b], acc0);
    offsets += block_offset<K>(w[b], x[b]);
  }
  return hsum(_mm256_add_ps(acc0, acc1)) + offsets;
}

// ---- gemm: register-blocked tiles (the optional TypeOps::gemm) for Q8_0, Q4_0 and F16; each
// weight block and activation block is loaded once per tile and used MR x NR times.
// Per-type policies: how one step (a block, or 8 floats) of a weight row and of an
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
    const __m256i q = _mm256_sub_epi8(unpack_nibbles(b->qs), _mm256_set1_epi8(8));
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
      // The rows of a tile are short side-by-side streams the hardware prefetcher misses:
      // fetch this step of the rows two tiles ahead.
      const uint8_t* ahead = w + i * ws + woff + ws * MR * 2;
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(ahead + K::kWBytes - 1), _MM_HINT_T0);
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

void fill_legacy_avx2(OpsTable& t) {
  slot(t, DType::Q8_0).quantize = quantize_q8_0;
  slot(t, DType::Q8_1).quantize = quantize_q8_1;
  slot(t, DType::Q8_0).vec_dot = vec_dot<DotQ8<BlockQ8_0>>;
  slot(t, DType::Q8_1).vec_dot = vec_dot<DotQ8<BlockQ8_1>>;
  slot(t, DType::Q4_0).vec_dot = vec_dot<DotQ4_0>;
  slot(t, DType::Q4_1).vec_dot = vec_dot<DotQ4_1>;
  slot(t, DType::Q5_0).vec_dot = vec_dot<DotQ5_0>;
  slot(t, DType::Q5_1).vec_dot = vec_dot<DotQ5_1>;
  slot(t, DType::Q8_0).gemm = gemm<GemmQ8_0>;
  slot(t, DType::Q4_0).gemm = gemm<GemmQ4_0>;
  slot(t, DType::F16).gemm = gemm<GemmF16>;
  avx2_legacy::fill_float(t);
}

}  // namespace zen::kernels
