// AVX-512 (F/BW/VL/DQ/VNNI) K-quant kernels, part 2: Q2_K, Q3_K and Q5_K dot products with a
// Q8_K activation row, 64 weights per step as in kquants.cpp. Extra level bits (Q3_K hmask,
// Q5_K qh) are tested into a byte mask and added with a masked byte add.
// Same ODR rules as kquants.cpp: anonymous-namespace helpers and intrinsics only.
#include <immintrin.h>

// GCC 12 reports its own _mm512_undefined_*() placeholders (inside _mm512_cvtepi32_ps,
// _mm512_inserti64x4, _mm512_reduce_add_ps) as uninitialized: a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstring>

#include "kernels/quant_k_x86.h"
#include "kernels/types.h"

namespace zen::kernels::kq_avx512 {
namespace {

__m128i load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
__m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
__m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// 16-bit lanes 0..15 = a, 16..31 = b.
__m512i halves_i16(short a, short b) { return _mm512_inserti64x4(_mm512_set1_epi16(a), _mm256_set1_epi16(b), 1); }
// Bytes 0..31 = a, 32..63 = b.
__m512i halves_i8(char a, char b) { return _mm512_inserti64x4(_mm512_set1_epi8(a), _mm256_set1_epi8(b), 1); }

// Permutation indices: 16-bit lane i -> first + i / 16.
__m512i idx_by_32(int first) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(first)), _mm256_set1_epi16(static_cast<short>(first + 1)), 1);
}
// 16-bit lane i -> first + i / 8.
__m512i idx_by_16(int first) {
  const __m512i base = _mm512_set_epi64(0x0003000300030003LL, 0x0003000300030003LL, 0x0002000200020002LL, 0x0002000200020002LL,
                                        0x0001000100010001LL, 0x0001000100010001LL, 0, 0);
  return _mm512_add_epi16(base, _mm512_set1_epi16(static_cast<short>(first)));
}

// Q3_K 12-byte scale field -> 16 signed scales (int8, already minus 32).
__m128i q3_scales(const uint8_t* packed) {
  uint32_t a[3];
  std::memcpy(a, packed, 12);
  const uint32_t s0 = (a[0] & 0x0f0f0f0fu) | ((a[2] & 0x03030303u) << 4);
  const uint32_t s1 = (a[1] & 0x0f0f0f0fu) | (((a[2] >> 2) & 0x03030303u) << 4);
  const uint32_t s2 = ((a[0] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 4) & 0x03030303u) << 4);
  const uint32_t s3 = ((a[1] >> 4) & 0x0f0f0f0fu) | (((a[2] >> 6) & 0x03030303u) << 4);
  const __m128i s = _mm_set_epi32(static_cast<int>(s3), static_cast<int>(s2), static_cast<int>(s1), static_cast<int>(s0));
  return _mm_sub_epi8(s, _mm_set1_epi8(32));
}

}  // namespace

float vec_dot_q2_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ2_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m512i shift01 = halves_i16(0, 2), shift23 = halves_i16(4, 6);
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m512 d = _mm512_set1_ps(dx * _cvtsh_ss(w[b].d));
    const __m128i raw = load128(w[b].scales);
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0f)));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f)));
    const __m256i mprod = _mm256_madd_epi16(mn16, load256(x[b].bsums));
    acc_min = _mm256_fmadd_ps(_mm256_set1_ps(dx * _cvtsh_ss(w[b].dmin)), _mm256_cvtepi32_ps(mprod), acc_min);
    const __m512i sc = _mm512_zextsi256_si512(sc16);
    __m512i sumi = _mm512_setzero_si512();
    for (int h = 0; h < 2; ++h) {  // byte l of qs[32h..] holds elements 128h + l + 32s in bit pair s
      const __m512i q = _mm512_broadcast_i64x4(load256(w[b].qs + 32 * h));
      const __m512i v0 = _mm512_and_si512(_mm512_srlv_epi16(q, shift01), m3);
      const __m512i v1 = _mm512_and_si512(_mm512_srlv_epi16(q, shift23), m3);
      const __m512i p0 = _mm512_maddubs_epi16(v0, load512(x[b].qs + 128 * h));
      const __m512i p1 = _mm512_maddubs_epi16(v1, load512(x[b].qs + 128 * h + 64));
      sumi = _mm512_dpwssd_epi32(sumi, p0, _mm512_permutexvar_epi16(idx_by_16(8 * h), sc));
      sumi = _mm512_dpwssd_epi32(sumi, p1, _mm512_permutexvar_epi16(idx_by_16(8 * h + 4), sc));
    }
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc);
  }
  const __m256 am = acc_min;
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(am), _mm256_extractf128_ps(am, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(s);
}

float vec_dot_q3_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ3_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m512i four = _mm512_set1_epi8(4);
  const __m512i shift01 = halves_i16(0, 2), shift23 = halves_i16(4, 6);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const __m512 d = _mm512_set1_ps(x[b].d * _cvtsh_ss(w[b].d));
    const __m256i sc16 = _mm256_cvtepi8_epi16(q3_scales(w[b].scales));
    const __m512i sc = _mm512_zextsi256_si512(sc16);
    // Levels are used as q + 4 in [0, 7]: subtract 4 * sum_j sc_j * bsum_j.
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(sc16, load256(x[b].bsums)), 2);
    __m512i sumi = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(offset));
    const __m512i hm = _mm512_broadcast_i64x4(load256(w[b].hmask));
    for (int h = 0; h < 2; ++h) {
      const __m512i q = _mm512_broadcast_i64x4(load256(w[b].qs + 32 * h));
      // elements 128h + 32s + l: high bit is bit 4h + s of hmask[l]
      const __mmask64 k0 = _mm512_test_epi8_mask(hm, halves_i8(static_cast<char>(1 << (4 * h)), static_cast<char>(2 << (4 * h))));
      const __mmask64 k1 = _mm512_test_epi8_mask(hm, halves_i8(static_cast<char>(4 << (4 * h)), static_cast<char>(8 << (4 * h))));
      __m512i v0 = _mm512_and_si512(_mm512_srlv_epi16(q, shift01), m3);
      __m512i v1 = _mm512_and_si512(_mm512_srlv_epi16(q, shift23), m3);
      v0 = _mm512_mask_add_epi8(v0, k0, v0, four);
      v1 = _mm512_mask_add_epi8(v1, k1, v1, four);
      const __m512i p0 = _mm512_maddubs_epi16(v0, load512(x[b].qs + 128 * h));
      const __m512i p1 = _mm512_maddubs_epi16(v1, load512(x[b].qs + 128 * h + 64));
      sumi = _mm512_dpwssd_epi32(sumi, p0, _mm512_permutexvar_epi16(idx_by_16(8 * h), sc));
      sumi = _mm512_dpwssd_epi32(sumi, p1, _mm512_permutexvar_epi16(idx_by_16(8 * h + 4), sc));
    }
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

float vec_dot_q5_K(int64_t n, const void* wv, const void* xv) {
  const auto* w = static_cast<const BlockQ5_K*>(wv);
  const auto* x = static_cast<const BlockQ8_K*>(xv);
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i sixteen = _mm512_set1_epi8(16);
  const __m512i nibble_shift = halves_i16(0, 4);
  __m512 acc = _mm512_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; ++b) {
    const float dx = x[b].d;
    const __m512 d = _mm512_set1_ps(dx * _cvtsh_ss(w[b].d));
    uint32_t a[3];
    std::memcpy(a, w[b].scales, 12);
    const uint32_t s_lo = a[0] & 0x3f3f3f3fu, m_lo = a[1] & 0x3f3f3f3fu;
    const uint32_t s_hi = (a[2] & 0x0f0f0f0fu) | ((a[0] >> 2) & 0x30303030u);
    const uint32_t m_hi = ((a[2] >> 4) & 0x0f0f0f0fu) | ((a[1] >> 2) & 0x30303030u);
    const __m128i sc16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(s_hi), static_cast<int>(s_lo)));
    const __m128i mn16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(m_hi), static_cast<int>(m_lo)));
    const __m256i bs = load256(x[b].bsums);
    const __m128i bs32 = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
    acc_min = _mm_fmadd_ps(_mm_set1_ps(dx * _cvtsh_ss(w[b].dmin)), _mm_cvtepi32_ps(_mm_madd_epi16(mn16, bs32)), acc_min);
    const __m512i sc = _mm512_zextsi128_si512(sc16);
    const __m512i hb = _mm512_broadcast_i64x4(load256(w[b].qh));
    __m512i bit = halves_i8(1, 2);  // qh bits 2j (low nibbles) and 2j+1 (high nibbles)
    __m512i sumi = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const __m512i q = _mm512_broadcast_i64x4(load256(w[b].qs + 32 * j));
      __m512i v = _mm512_and_si512(_mm512_srlv_epi16(q, nibble_shift), m4);
      v = _mm512_mask_add_epi8(v, _mm512_test_epi8_mask(hb, bit), v, sixteen);
      const __m512i p = _mm512_maddubs_epi16(v, load512(x[b].qs + 64 * j));
      sumi = _mm512_dpwssd_epi32(sumi, p, _mm512_permutexvar_epi16(idx_by_32(2 * j), sc));
      bit = _mm512_slli_epi16(bit, 2);
    }
    acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc);
  }
  __m128 s = _mm_add_ps(acc_min, _mm_movehl_ps(acc_min, acc_min));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm512_reduce_add_ps(acc) - _mm_cvtss_f32(s);
}

}  // namespace zen::kernels::kq_avx512
