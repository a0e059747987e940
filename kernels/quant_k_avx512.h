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

// Q4_K: the 64 levels of elements 64j .. 64j+63 (4-bit, one byte each, in element order).
inline __m512i q4_levels(const uint8_t* qs, int j) {
  const __m512i q = _mm512_broadcast_i64x4(load256(qs + 32 * j));
  return _mm512_and_si512(_mm512_srlv_epi16(q, halves_i16(0, 4)), _mm512_set1_epi8(0x0f));
}

// Q5_K: adds the fifth bit (16) to the levels of elements 64j .. 64j+63 from q4_levels: bit 2j
// of qh[l] for the first 32, bit 2j+1 for the next 32.
inline __m512i q5_high_bits(__m512i levels, const uint8_t* qh, int j) {
  const __m512i hb = _mm512_broadcast_i64x4(load256(qh));
  const __mmask64 k = _mm512_test_epi8_mask(hb, halves_i8(static_cast<char>(1 << (2 * j)), static_cast<char>(2 << (2 * j))));
  return _mm512_mask_add_epi8(levels, k, levels, _mm512_set1_epi8(16));
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

// Integer dot product of 128 weight levels with 128 activations, two 64-element halves (a, b)
// at a time: vpdpbusd sums 4 products per 32-bit lane exactly (|sum| <= 4 * 63 * 127 < 2^15),
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
// Q4_K/Q5_K: a half is 64 elements = sub-blocks of 32: lanes 0..7 of half a belong to its first
// sub-block, 8..15 to its second. Pair p covers sub-blocks 4p .. 4p+3.
constexpr ScaleIdx scale_idx_by_32(int p) {
  ScaleIdx r{};
  for (int l = 0; l < 32; ++l) r.lane[l] = static_cast<int16_t>(4 * p + (l % 8 < 4 ? 0 : 2) + (l / 8 >= 2 ? 1 : 0));
  return r;
}
// Q6_K: sub-blocks of 16: lane 4c+i of a half belongs to its sub-block c. Pair p covers 8p .. 8p+7.
constexpr ScaleIdx scale_idx_by_16(int p) {
  ScaleIdx r{};
  for (int l = 0; l < 32; ++l) r.lane[l] = static_cast<int16_t>(8 * p + (l % 8 < 4 ? 0 : 4) + l / 8);
  return r;
}
constexpr ScaleIdx kScaleIdx32[2] = {scale_idx_by_32(0), scale_idx_by_32(1)};
constexpr ScaleIdx kScaleIdx16[2] = {scale_idx_by_16(0), scale_idx_by_16(1)};
// The scales of pair p in dot_pair's layout, from 8 (Q4_K/Q5_K) or 16 (Q6_K) int16 scales in
// the low lanes of sc.
inline __m512i scale_pairs_by_32(__m512i sc, int p) { return _mm512_permutexvar_epi16(load512(kScaleIdx32[p].lane), sc); }
inline __m512i scale_pairs_by_16(__m512i sc, int p) { return _mm512_permutexvar_epi16(load512(kScaleIdx16[p].lane), sc); }

}  // namespace
}  // namespace zen::kernels::kq_avx512
