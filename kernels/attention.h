// Attention of the query heads that share one KV head over their cached keys and values (F32
// cache): the inner loop of engine/forward.cpp's attention, with a per-ISA version where the
// head size allows.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zen::kernels {

// For each of `heads` query heads h (query at q + h * hd): o[h * hdv .. + hdv) = sum_j p_j V_j
// with p = softmax(scale * (q_h . K_j)) over j < len; key j's hd floats at K + j * k_stride,
// value j's hdv floats at V + j * v_stride. scores: heads * len floats of scratch. Each head's
// result is the same whatever `heads` is. Uses the active ISA level (AVX-512 when hd and hdv
// are multiples of 16 up to 256: the heads go over the keys a chunk at a time, so that a
// chunk read once serves them all from L1 instead of each head reading every key from L2).
void attend_f32(const float* q, int heads, const float* K, size_t k_stride, const float* V, size_t v_stride, int64_t hd,
                int64_t hdv, int32_t len, float scale, float* scores, float* o);

}  // namespace zen::kernels
