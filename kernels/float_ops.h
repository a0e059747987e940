// Element-wise and row-wise float operations of the transformer block.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zen::kernels {

// out = x / sqrt(mean(x^2) + eps) * w   (w may be null: no scaling). out may alias x.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* out);

enum class RopeType { Normal, Neox };

struct RopeParams {
  int n_rot = 0;             // rotated dimensions at the front of each head
  float freq_base = 10000;   // theta_i = pos * freq_base^(-2i/n_rot) * freq_scale
  float freq_scale = 1;
  RopeType type = RopeType::Normal;
};

// Rotates every head of one row in place. x: [n_heads][head_dim].
// Normal pairs (2i, 2i+1); NEOX pairs (i, i + n_rot/2).
void rope(float* x, int n_heads, int head_dim, int pos, const RopeParams& p);

// x[i] = exp(x[i] - max) / sum, over n values.
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i]
void swiglu(const float* gate, const float* up, int64_t n, float* out);

void add(float* dst, const float* src, int64_t n);
float dot_f32(const float* a, const float* b, int64_t n);
// dst += a * x
void axpy(float* dst, float a, const float* x, int64_t n);

}  // namespace zen::kernels
