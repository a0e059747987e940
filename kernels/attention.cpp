#include "kernels/attention.h"

#include <algorithm>

#include "kernels/float_ops.h"
#include "kernels/ops.h"

namespace zen::kernels {

#if defined(ZEN_ARCH_X86)
// kernels/x86/avx512/attention.cpp; false when the head shape is not one it handles.
bool attend_f32_avx512(const float* q, int heads, const float* K, size_t k_stride, const float* V, size_t v_stride,
                       int64_t hd, int64_t hdv, int32_t len, float scale, float* scores, float* o);
#endif

void attend_f32(const float* q, int heads, const float* K, size_t k_stride, const float* V, size_t v_stride, int64_t hd,
                int64_t hdv, int32_t len, float scale, float* scores, float* o) {
#if defined(ZEN_ARCH_X86)
  if (active_isa() == Isa::Avx512 && attend_f32_avx512(q, heads, K, k_stride, V, v_stride, hd, hdv, len, scale, scores, o)) return;
#endif
  for (int h = 0; h < heads; ++h, q += hd, o += hdv) {
    for (int32_t j = 0; j < len; ++j) scores[j] = dot_f32(q, K + static_cast<size_t>(j) * k_stride, hd) * scale;
    softmax(scores, len);
    std::fill(o, o + hdv, 0.0f);
    for (int32_t j = 0; j < len; ++j) axpy(o, scores[j], V + static_cast<size_t>(j) * v_stride, hdv);
  }
}

}  // namespace zen::kernels
