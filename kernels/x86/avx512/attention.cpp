// AVX-512 attention for one query head (kernels/attention.h): the query stays in registers
// while every key meets it (one fma per 16 floats), and the output row stays in registers
// while every value is added to it, instead of one dot_f32 and one axpy call per cached
// position. Keys go 16 at a time, their 16 product vectors summed in one transposing tree
// (45 instructions instead of a 4-level reduction per key).
// GCC 12's AVX-512 headers self-initialize their _mm512_undefined_* values, which -Wall reports.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

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

bool attend_f32_avx512(const float* q, const float* K, size_t k_stride, const float* V, size_t v_stride, int64_t hd,
                       int64_t hdv, int32_t len, float scale, float* scores, float* o) {
  if (hd % 16 != 0 || hdv % 16 != 0 || hd > 16 * kMaxVec || hdv > 16 * kMaxVec) return false;
  const int nq = static_cast<int>(hd / 16), nv = static_cast<int>(hdv / 16);
  __m512 qv[kMaxVec];
  for (int i = 0; i < nq; ++i) qv[i] = _mm512_loadu_ps(q + 16 * i);
  int32_t j = 0;
  for (; j + 16 <= len; j += 16) {
    __m512 a[16];
    for (int t = 0; t < 16; ++t) {
      const float* k = K + static_cast<size_t>(j + t) * k_stride;
      a[t] = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
      for (int i = 1; i < nq; ++i) a[t] = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), a[t]);
    }
    _mm512_storeu_ps(scores + j, _mm512_mul_ps(sum_lanes16(a), _mm512_set1_ps(scale)));
  }
  for (; j < len; ++j) {
    const float* k = K + static_cast<size_t>(j) * k_stride;
    __m512 a = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
    for (int i = 1; i < nq; ++i) a = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), a);
    scores[j] = _mm512_reduce_add_ps(a) * scale;
  }
  softmax(scores, len);
  __m512 ov[kMaxVec];
  for (int i = 0; i < nv; ++i) ov[i] = _mm512_setzero_ps();
  for (j = 0; j < len; ++j) {
    const float* v = V + static_cast<size_t>(j) * v_stride;
    const __m512 p = _mm512_set1_ps(scores[j]);
    for (int i = 0; i < nv; ++i) ov[i] = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + 16 * i), ov[i]);
  }
  for (int i = 0; i < nv; ++i) _mm512_storeu_ps(o + 16 * i, ov[i]);
  return true;
}

}  // namespace zen::kernels
