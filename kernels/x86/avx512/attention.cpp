// AVX-512 attention for one query head (kernels/attention.h): the query stays in registers
// while every key meets it (one fma per 16 floats, one reduction per key), and the output
// row stays in registers while every value is added to it, instead of one dot_f32 and one
// axpy call per cached position.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/float_ops.h"

namespace zen::kernels {

namespace {
constexpr int kMaxVec = 16;  // head sizes up to 256 floats
}

bool attend_f32_avx512(const float* q, const float* K, size_t k_stride, const float* V, size_t v_stride, int64_t hd,
                       int64_t hdv, int32_t len, float scale, float* scores, float* o) {
  if (hd % 16 != 0 || hdv % 16 != 0 || hd > 16 * kMaxVec || hdv > 16 * kMaxVec) return false;
  const int nq = static_cast<int>(hd / 16), nv = static_cast<int>(hdv / 16);
  __m512 qv[kMaxVec];
  for (int i = 0; i < nq; ++i) qv[i] = _mm512_loadu_ps(q + 16 * i);
  for (int32_t j = 0; j < len; ++j) {
    const float* k = K + static_cast<size_t>(j) * k_stride;
    __m512 a = _mm512_mul_ps(qv[0], _mm512_loadu_ps(k));
    for (int i = 1; i < nq; ++i) a = _mm512_fmadd_ps(qv[i], _mm512_loadu_ps(k + 16 * i), a);
    scores[j] = _mm512_reduce_add_ps(a) * scale;
  }
  softmax(scores, len);
  __m512 ov[kMaxVec];
  for (int i = 0; i < nv; ++i) ov[i] = _mm512_setzero_ps();
  for (int32_t j = 0; j < len; ++j) {
    const float* v = V + static_cast<size_t>(j) * v_stride;
    const __m512 p = _mm512_set1_ps(scores[j]);
    for (int i = 0; i < nv; ++i) ov[i] = _mm512_fmadd_ps(p, _mm512_loadu_ps(v + 16 * i), ov[i]);
  }
  for (int i = 0; i < nv; ++i) _mm512_storeu_ps(o + 16 * i, ov[i]);
  return true;
}

}  // namespace zen::kernels
