// Private helpers of the AVX-512 K-quant files (kernels/x86/avx512/kquants*.cpp); include only
// from files compiled with the AVX-512 flags. Everything is in an anonymous namespace, so each
// file gets its own internal copy and no AVX-512 code can be picked by the linker for another
// file (ODR safety).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/quant_k_x86_common.h"

// GCC 12 reports its own _mm512_undefined_*() placeholders (inside _mm512_cvtepi32_ps,
// _mm512_inserti64x4, _mm512_reduce_add_ps) as uninitialized: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace zen::kernels::kq_avx512 {
namespace {

using namespace kq_x86;  // NOLINT: the shared scale decoders and loads

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// 16-bit lanes 0..15 = a, 16..31 = b (e.g. shift counts for the two halves of a broadcast).
inline __m512i halves_i16(short a, short b) {
  return _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1);
}
// Bytes 0..31 = a, 32..63 = b.
inline __m512i halves_i8(char a, char b) { return _mm512_inserti64x4(_mm512_set1_epi8(a), _mm256_set1_epi8(b), 1); }

// Permutation indices for scales (Q2_K/Q3_K): 16-bit lane i -> first + i / 8 (sub-blocks of 16 weights).
inline __m512i idx_by_16(int first) {
  const __m512i base = _mm512_set_epi64(0x0003000300030003LL, 0x0003000300030003LL, 0x0002000200020002LL,
                                        0x0002000200020002LL, 0x0001000100010001LL, 0x0001000100010001LL, 0, 0);
  return _mm512_add_epi16(base, _mm512_set1_epi16(static_cast<short>(first)));
}

// Q6_K: the 64 levels (6-bit, stored as q + 32) of elements 128h + 64k .. +63, k in {0, 1}.
inline __m512i q6_levels(const uint8_t* ql, const uint8_t* qh, int h, int k) {
  const __m512i l = load512(ql + 64 * h);
  const __m512i hb = _mm512_broadcast_i64x4(load256(qh + 32 * h));
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  // bytes 0..31 of ql carry elements l (low nibble) and l+64 (high); bytes 32..63: l+32, l+96.
  // qh bit pairs 0,1 (k = 0) or 2,3 (k = 1) of each half become bits 4..5.
  if (k == 0)
    return _mm512_ternarylogic_epi32(_mm512_and_si512(l, m4), _mm512_sllv_epi16(hb, halves_i16(4, 2)), m30, 0xf8);
  return _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_srlv_epi16(hb, halves_i16(0, 2)),
                                   m30, 0xf8);
}

// Q6_K: integer dot product of 128 weight levels with 128 activations, two 64-element halves
// (a, b) at a time: vpdpbusd sums 4 products per 32-bit lane exactly (|sum| <= 4 * 63 * 127 < 2^15),
// vpackssdw packs both halves to 16 bits without loss, and vpdpwssd multiplies each 16-bit
// lane by its sub-block scale (s, laid out by scale_pairs_*) and adds adjacent lanes into acc.
// 3 multiplies per 128 weights, where vpmaddubsw + vpdpwssd per 64 take 4.
inline __m512i dot_pair(__m512i acc, __m512i va, const void* xa, __m512i vb, const void* xb, __m512i s) {
  const __m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), va, load512(xa));
  const __m512i pb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), vb, load512(xb));
  return _mm512_dpwssd_epi32(acc, _mm512_packs_epi32(pa, pb), s);
}

// Where dot_pair's packed 16-bit lane l comes from: 128-bit chunk c = l / 8 holds lanes
// 4c .. 4c+3 of half a (positions 0..3) then of half b (positions 4..7).
struct ScaleIdx {
  alignas(64) int16_t lane[32];
};
// Q6_K: sub-blocks of 16: lane 4c+i of a half belongs to its sub-block c. Pair p covers 8p .. 8p+7.
constexpr ScaleIdx scale_idx_by_16(int p) {
  ScaleIdx r{};
  for (int l = 0; l < 32; ++l) r.lane[l] = static_cast<int16_t>(8 * p + (l % 8 < 4 ? 0 : 4) + l / 8);
  return r;
}
constexpr ScaleIdx kScaleIdx16[2] = {scale_idx_by_16(0), scale_idx_by_16(1)};
// The scales of pair p in dot_pair's layout, from the 16 int16 Q6_K scales in the low lanes of sc.
inline __m512i scale_pairs_by_16(__m512i sc, int p) { return _mm512_permutexvar_epi16(load512(kScaleIdx16[p].lane), sc); }

// Lane-aligned layout (Q4_K and Q5_K): the activations of every 128-element group are stored
// as two 64-byte halves, a = elements [0,16) [32,48) [64,80) [96,112) and b = [16,32) [48,64)
// [80,96) [112,128) of the group (relayout_q8_K_lanes, which also sums the bsums in pairs), and
// the weight levels are unpacked in the same order. Then 32-bit lane l of both halves belongs
// to sub-block l / 4 of the group, so two vpdpbusd can sum 8 products into one lane
// (|sum| <= 8 * 31 * 128 < 2^15) before the scale is applied (dot_lanes).
// The block's bsums become the sums of the 8 sub-blocks of 32 (in bsums[0..7], the only sums
// Q4_K/Q5_K use; bsums[8..15] are zeroed).
inline void relayout_lanes_block(int8_t* qs, int16_t* bsums) {
  const __m128i s32 = bsums_by_32(bsums);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(bsums), s32);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(bsums + 8), _mm_setzero_si128());
  for (int h = 0; h < 2; ++h) {
    const __m512i x0 = load512(qs + 128 * h), x1 = load512(qs + 128 * h + 64);
    _mm512_storeu_si512(qs + 128 * h, _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm512_storeu_si512(qs + 128 * h + 64, _mm512_shuffle_i64x2(x0, x1, _MM_SHUFFLE(3, 1, 3, 1)));
  }
}

// The 128 Q4_K levels of group p (qs bytes 64p .. 64p+63: low nibbles = sub-blocks 4p and
// 4p+2, high nibbles = 4p+1 and 4p+3), in the lane-aligned order: 16-byte chunks of the low
// (L) and high (H) nibbles interleave as a = L0 H0 L2 H2, b = L1 H1 L3 H3.
struct LanePair {
  __m512i a, b;
};
inline LanePair lane_levels(__m512i lo, __m512i hi) {
  const __m512i ia = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), ib = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
  return {_mm512_permutex2var_epi64(lo, ia, hi), _mm512_permutex2var_epi64(lo, ib, hi)};
}
// The 64 bytes of group p as two 32-byte loads: a block's qs is not 64-byte aligned, and one
// 64-byte load then splits across cache lines in 3 blocks of 4 (Q4_K decode, 1 thread:
// 26 -> 29 tokens/s with two halves).
inline __m512i load_group(const uint8_t* qs, int p) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(load256(qs + 64 * p)), load256(qs + 64 * p + 32), 1);
}
inline LanePair q4_lane_levels(const uint8_t* qs, int p) {
  const __m512i q = load_group(qs, p), m4 = _mm512_set1_epi8(0x0f);
  return lane_levels(_mm512_and_si512(q, m4), _mm512_and_si512(_mm512_srli_epi16(q, 4), m4));
}
// Q5_K: the fifth bit (16) of element 64j + i (i < 32) is bit 2j of qh[i], of 64j + 32 + i bit
// 2j + 1; group p holds j = 2p (low nibbles of bytes 0..31, high nibbles) and 2p + 1 (bytes 32..63).
inline LanePair q5_lane_levels(const uint8_t* qs, const uint8_t* qh, int p) {
  const __m512i q = load_group(qs, p), m4 = _mm512_set1_epi8(0x0f), b16 = _mm512_set1_epi8(16);
  const __m512i hb = _mm512_broadcast_i64x4(load256(qh));
  __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
  const __mmask64 klo = _mm512_test_epi8_mask(hb, halves_i8(static_cast<char>(1 << (4 * p)), static_cast<char>(4 << (4 * p))));
  const __mmask64 khi = _mm512_test_epi8_mask(hb, halves_i8(static_cast<char>(2 << (4 * p)), static_cast<char>(8 << (4 * p))));
  lo = _mm512_mask_add_epi8(lo, klo, lo, b16);
  hi = _mm512_mask_add_epi8(hi, khi, hi, b16);
  return lane_levels(lo, hi);
}

// One super-block of one activation row: per group p, two vpdpbusd sum 8 products into each
// 32-bit lane (lane l: sub-block 4p + l / 4), vpackssdw packs both groups to 16 bits without
// loss (|sum| <= 8 * 31 * 128 < 2^15), and one vpdpwssd applies the 8 sub-block scales (s16,
// from lane_scales) and adds adjacent lanes, which share a sub-block, into 32 bits.
// 5 multiplies per 256 weights, where dot_pair takes 6.
inline __m512i dot_lanes(const LanePair (&w)[2], const int8_t* x, __m512i s16) {
  const __m512i z = _mm512_setzero_si512();
  const __m512i t0 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, w[0].a, load512(x)), w[0].b, load512(x + 64));
  const __m512i t1 = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(z, w[1].a, load512(x + 128)), w[1].b, load512(x + 192));
  return _mm512_dpwssd_epi32(z, _mm512_packs_epi32(t0, t1), s16);
}

// dot_lanes' scale vector: vpackssdw puts lanes 4c .. 4c+3 of group 0 then of group 1 in 128-bit
// chunk c, so 16-bit lane j takes scale j / 8 (j % 8 < 4) or 4 + j / 8, from the 8 scales as
// bytes 0..7 of sm (k4_scales_mins).
constexpr ScaleIdx lane_scale_idx() {
  ScaleIdx r{};
  for (int j = 0; j < 32; ++j) r.lane[j] = static_cast<int16_t>((j % 8 < 4 ? 0 : 4) + j / 8);
  return r;
}
constexpr ScaleIdx kLaneScaleIdx = lane_scale_idx();

inline __m512i lane_scales(__m128i sm) {
  return _mm512_permutexvar_epi16(load512(kLaneScaleIdx.lane), _mm512_zextsi128_si512(_mm_cvtepu8_epi16(sm)));
}

// Q4_K_LANES (kernels/quant_k_lanes.cpp): the four level vectors of one super-block are the
// low and high nibbles of its two 64-byte halves, with no shuffle.
struct Levels16 {
  __m512i v[4];
};
inline Levels16 lanes16_nibbles(__m512i q0, __m512i q1) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  return {{_mm512_and_si512(q0, m4), _mm512_and_si512(_mm512_srli_epi16(q0, 4), m4), _mm512_and_si512(q1, m4),
           _mm512_and_si512(_mm512_srli_epi16(q1, 4), m4)}};
}
inline Levels16 lanes16_levels(const uint8_t* qs) { return lanes16_nibbles(load_group(qs, 0), load_group(qs, 1)); }
// The super-block's integer sums with activations in relayout_q8_K_lanes16's order: four
// vpdpbusd into one accumulator, so 32-bit lane l sums 16 products of sub-block l / 2
// (|sum| <= 16 * 15 * 128 < 2^15: it packs to 16 bits without loss).
inline __m512i lanes16_sums(const Levels16& w, const int8_t* x) {
  __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.v[0], load512(x));
  t = _mm512_dpbusd_epi32(t, w.v[1], load512(x + 64));
  t = _mm512_dpbusd_epi32(t, w.v[2], load512(x + 128));
  return _mm512_dpbusd_epi32(t, w.v[3], load512(x + 192));
}
// Q6_K_LANES (kernels/quant_k_lanes.cpp): the four level vectors (stored as q + 32, 0..63)
// of one super-block, low nibbles from ql's two 64-byte halves and bit pairs from qh; 32-bit
// lane l of each belongs to sub-block l. lanes16_sums then gives each sub-block's sum in one
// 32-bit lane (|sum| <= 16 * 63 * 128: no 16-bit packing, the scales multiply in 32 bits).
inline Levels16 q6_lanes_levels(const uint8_t* ql, const uint8_t* qh) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
  const __m512i l0 = load_group(ql, 0), l1 = load_group(ql, 1), h = load_group(qh, 0);
  // A | (B & C): the nibble, then the bit pair moved to bits 4..5
  return {{_mm512_ternarylogic_epi32(_mm512_and_si512(l0, m4), _mm512_slli_epi16(h, 4), m30, 0xf8),
           _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l0, 4), m4), _mm512_slli_epi16(h, 2), m30, 0xf8),
           _mm512_ternarylogic_epi32(_mm512_and_si512(l1, m4), h, m30, 0xf8),
           _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), _mm512_srli_epi16(h, 2), m30, 0xf8)}};
}
// Q6_K_LANES: the scaled sums of one super-block, sub-block l in lane l: the levels' offset
// of 32 comes off with the activation sums (bs32 = 32 * bsums, q6_offsets), then each lane is
// multiplied by its scale in 32 bits (exact: |sum| < 2^31).
inline __m512i q6_offsets(const int16_t* bsums) { return _mm512_slli_epi32(_mm512_cvtepi16_epi32(load256(bsums)), 5); }
inline __m512i q6_lanes_scaled(const Levels16& w, const int8_t* x, __m512i bs32, __m512i sc32) {
  return _mm512_mullo_epi32(_mm512_sub_epi32(lanes16_sums(w, x), bs32), sc32);
}

// Two super-blocks b, b+1 share one vpackssdw + vpdpwssd: 128-bit chunk k of the packed
// vector holds lanes 4k .. 4k+3 of b then of b+1, adjacent 16-bit lanes share a sub-block, so
// 16-bit lane 8k + m takes scale 2k + m / 2 of b (m < 4) or 2k + (m - 4) / 2 of b+1; the
// result's 32-bit lanes 4k, 4k+1 belong to b and 4k+2, 4k+3 to b+1.
constexpr ScaleIdx pair_scale_idx() {
  ScaleIdx r{};
  for (int j = 0; j < 32; ++j) {
    const int k = j / 8, m = j % 8;
    r.lane[j] = static_cast<int16_t>(m < 4 ? 2 * k + m / 2 : 8 + 2 * k + (m - 4) / 2);
  }
  return r;
}
constexpr ScaleIdx kPairScaleIdx = pair_scale_idx();
// From the scale bytes (0..7) of k4_scales_mins of b and of b+1.
inline __m512i pair_scales(__m128i sm0, __m128i sm1) {
  return _mm512_permutexvar_epi16(load512(kPairScaleIdx.lane),
                                  _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(_mm_unpacklo_epi64(sm0, sm1))));
}

// Q4_K_LANES's mins term of a step (b, b+1), as 4 lanes like the integer sums: lane 2e + h
// sums min_j * bsum_j of block b+e over j = 2h, 2h+1, 4+2h, 5+2h, as
// vpdpwssd(vpmaddwd(m.lo, bs.lo), m.hi, bs.hi) of the 16-bit mins and bsums of b (a) and b+1 (b).
struct MinPairs {
  __m128i lo, hi;
};
inline MinPairs min_pairs(__m128i a, __m128i b) { return {_mm_unpacklo_epi64(a, b), _mm_unpackhi_epi64(a, b)}; }

// Sum of the four 128-bit chunks of v: 4 int32 lanes (exact).
inline __m128i fold4(__m512i v) {
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

}  // namespace
}  // namespace zen::kernels::kq_avx512
