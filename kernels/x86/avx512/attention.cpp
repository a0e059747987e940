// AVX-512 attention for the query heads of one KV head (kernels/attention.h): a query stays
// in registers while every key meets it (one fma per 16 floats), and an output row stays in
// registers while every value is added to it, instead of one dot_f32 and one axpy call per
// cached position. Keys go 16 at a time, their 16 product vectors summed in one transposing
// tree (45 instructions instead of a 4-level reduction per key). The heads take the keys and
// values a chunk at a time, each chunk read from memory once for all of them.
// GCC 12's AVX-512 headers self-initialize their _mm512_undefined_* values, which -Wall reports.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/float_ops.h"

namespace zen::kernels {

namespace {
constexpr int kMaxVec = 16;  // head sizes up to 256 floats

// Lane t of the result: the sum of a[t]'s 16 lanes.
inline __m512 sum_lanes16(__m512 (&a)[16]) {
  __m512 b[8], c[4], d[2];
  // per 128-bit chunk: a[2i]'s pair sums in lanes 0, 2, a[2i+1]'s in 1, 3
  for (int i = 0; i < 8; ++i) b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
  // per chunk: the chunk's sums of a[4i] .. a[4i+3] in lanes 0 .. 3
  for (int i = 0; i < 4; ++i)
    c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // chunks 0, 1: a[8i] .. a[8i+3] over chunks (0, 1) and (2, 3); chunks 2, 3: a[8i+4] .. the same
  for (int i = 0; i < 2; ++i)
    d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
}
}  // namespace

namespace {

// The query's NQ vectors and the output's NV vectors are template counts: with a run-time count
// GCC kept the output row in memory and every fma waited on a store and a reload (attention
// took 8 % of a 4-sequence decode at 256 tokens).
template <int NQ>
void scores_t(const float* q, const float* K, size_t k_stride, int32_t len, float scale, float* scores) {
  __m512 qv[NQ];
  for (int i = 0; i < NQ; ++i) qv[i] = _mm512_loadu_ps(q + 16 * i);
  int32_t j = 0;
  for (; j + 16 <= len; j += 16) {
    __m512 a[16];
    for (int t = 0; t < 16; ++t) {
      const float* k = K + static_cast<size_t>(j + t) * k_stride;
      a[t] = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
      for (int i = 1; i < NQ; ++i) a[t] = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), a[t]);
    }
    _mm512_storeu_ps(scores + j, _mm512_mul_ps(sum_lanes16(a), _mm512_set1_ps(scale)));
  }
  for (; j < len; ++j) {
    const float* k = K + static_cast<size_t>(j) * k_stride;
    __m512 a = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
    for (int i = 1; i < NQ; ++i) a = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), a);
    scores[j] = _mm512_reduce_add_ps(a) * scale;
  }
}

// Adds the chunk's values into o (from zero when `first`).
// Two accumulators per output vector, for even and odd keys: one chain of fmas per vector
// waited on the fma latency at every key.
template <int NV>
void values_t(const float* scores, const float* V, size_t v_stride, int32_t len, float* o, bool first) {
  __m512 even[NV], odd[NV];
  for (int i = 0; i < NV; ++i) {
    even[i] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(o + 16 * i);
    odd[i] = _mm512_setzero_ps();
  }
  int32_t j = 0;
  for (; j + 2 <= len; j += 2) {
    const float* v = V + static_cast<size_t>(j) * v_stride;
    const __m512 p0 = _mm512_set1_ps(scores[j]), p1 = _mm512_set1_ps(scores[j + 1]);
    for (int i = 0; i < NV; ++i) {
      even[i] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v + 16 * i), even[i]);
      odd[i] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v + v_stride + 16 * i), odd[i]);
    }
  }
  if (j < len) {
    const float* v = V + static_cast<size_t>(j) * v_stride;
    const __m512 p = _mm512_set1_ps(scores[j]);
    for (int i = 0; i < NV; ++i) even[i] = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + 16 * i), even[i]);
  }
  for (int i = 0; i < NV; ++i) _mm512_storeu_ps(o + 16 * i, _mm512_add_ps(even[i], odd[i]));
}

using ScoresFn = void (*)(const float*, const float*, size_t, int32_t, float, float*);
using ValuesFn = void (*)(const float*, const float*, size_t, int32_t, float*, bool);
template <size_t... I>
constexpr auto scores_table(std::index_sequence<I...>) { return std::array<ScoresFn, sizeof...(I)>{scores_t<I + 1>...}; }
template <size_t... I>
constexpr auto values_table(std::index_sequence<I...>) { return std::array<ValuesFn, sizeof...(I)>{values_t<I + 1>...}; }
constexpr auto kScores = scores_table(std::make_index_sequence<kMaxVec>());  // [n - 1]: n vectors
constexpr auto kValues = values_table(std::make_index_sequence<kMaxVec>());

}  // namespace

// Keys per chunk: a multiple of 16 (the score blocks fall where one pass puts them), and 64
// keys of a 64-float head are 16 KiB, half of L1.
constexpr int32_t kChunk = 64;

bool attend_f32_avx512(const float* q, int heads, const float* K, size_t k_stride, const float* V, size_t v_stride,
                       int64_t hd, int64_t hdv, int32_t len, float scale, float* scores, float* o) {
  if (hd % 16 != 0 || hdv % 16 != 0 || hd == 0 || hdv == 0 || hd > 16 * kMaxVec || hdv > 16 * kMaxVec) return false;
  if (len <= 0) {
    std::fill(o, o + heads * hdv, 0.0f);
    return true;
  }
  const ScoresFn score = kScores[static_cast<size_t>(hd / 16 - 1)];
  const ValuesFn value = kValues[static_cast<size_t>(hdv / 16 - 1)];
  for (int32_t j = 0; j < len; j += kChunk)
    for (int h = 0; h < heads; ++h)
      score(q + h * hd, K + static_cast<size_t>(j) * k_stride, k_stride, std::min(kChunk, len - j), scale, scores + static_cast<size_t>(h) * len + j);
  for (int h = 0; h < heads; ++h) softmax(scores + static_cast<size_t>(h) * len, len);
  for (int32_t j = 0; j < len; j += kChunk)
    for (int h = 0; h < heads; ++h)
      value(scores + static_cast<size_t>(h) * len + j, V + static_cast<size_t>(j) * v_stride, v_stride, std::min(kChunk, len - j),
            o + h * hdv, j == 0);
  return true;
}

}  // namespace zen::kernels
