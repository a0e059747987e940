#include "kernels/float_ops.h"

#include <cmath>

#include "kernels/ops.h"

namespace zen::kernels {

#if defined(ZEN_ARCH_X86)
// kernels/x86/avx512/float_ops.cpp
void softmax_avx512(float* x, int64_t n);
void rms_norm_avx512(const float* x, const float* w, int64_t n, float eps, float* out);
void swiglu_avx512(const float* gate, const float* up, int64_t n, float* out);
#endif

void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out) {
#if defined(ZEN_ARCH_X86)
  if (active_isa() == Isa::Avx512) return rms_norm_avx512(x, w, n, eps, out);
#endif
  double sum = 0;  // accumulate in double, as the reference does
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (w) {
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  }
}

void rope(float* x, int n_heads, int head_dim, int pos, const RopeParams& p) {
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
  // cos/sin per rotated pair; theta grows by repeated multiplication.
  float cs[512], sn[512];
  const int n_pairs = p.n_rot / 2;
  float theta = static_cast<float>(pos);
  for (int i = 0; i < n_pairs && i < 512; ++i) {
    const float t = theta * p.freq_scale;
    cs[i] = std::cos(t);
    sn[i] = std::sin(t);
    theta *= theta_scale;
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<size_t>(h) * head_dim;
    if (p.type == RopeType::Normal) {
      for (int i = 0; i < n_pairs; ++i) {
        const float a = v[2 * i], b = v[2 * i + 1];
        v[2 * i] = a * cs[i] - b * sn[i];
        v[2 * i + 1] = a * sn[i] + b * cs[i];
      }
    } else {
      for (int i = 0; i < n_pairs; ++i) {
        const float a = v[i], b = v[i + n_pairs];
        v[i] = a * cs[i] - b * sn[i];
        v[i + n_pairs] = a * sn[i] + b * cs[i];
      }
    }
  }
}

void softmax(float* x, int64_t n) {
#if defined(ZEN_ARCH_X86)
  if (active_isa() == Isa::Avx512) return softmax_avx512(x, n);
#endif
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float e = std::exp(x[i] - mx);
    x[i] = e;
    sum += e;
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
#if defined(ZEN_ARCH_X86)
  if (active_isa() == Isa::Avx512) return swiglu_avx512(gate, up, n, out);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void add(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

float dot_f32(const float* a, const float* b, int64_t n) {
  // 8 independent partial sums: vectorisable and close to the reference's SIMD order.
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float* dst, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += a * x[i];
}

}  // namespace zen::kernels
