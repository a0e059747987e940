// One query head's attention over its cached keys and values (F32 cache): the inner loop of
// engine/forward.cpp's attention, with a per-ISA version where the head size allows.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zen::kernels {

// o[0 .. hdv) = sum_j p_j V_j with p = softmax(scale * (q . K_j)) over j < len; key j's hd
// floats at K + j * k_stride, value j's hdv floats at V + j * v_stride. scores: len floats of
// scratch. Uses the active ISA level (AVX-512 when hd and hdv are multiples of 16 and hdv <= 256).
void attend_f32(const float* q, const float* K, size_t k_stride, const float* V, size_t v_stride, int64_t hd, int64_t hdv,
                int32_t len, float scale, float* scores, float* o);

}  // namespace zen::kernels
