// Matrix products of a weight matrix (in any block format) with float activations.
//
// The activations are first converted to the weight type's vec_dot_type (Q8_0, Q8_1, Q8_K,
// F16, BF16 or F32), as llama.cpp does, then every (weight row, activation row) pair is a
// vec_dot. Rows are handed out in blocks through an atomic counter so both threads stay busy
// even when one core is slower; activation rows are processed in tiles so a block of weight
// rows stays in cache while it meets every activation row (prompt processing).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kernels/threadpool.h"
#include "kernels/types.h"

namespace zen::kernels {

// A row-major weight matrix: `rows` rows of `cols` elements, row r at data + r * row_stride.
struct MatRef {
  DType type = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_stride = 0;
};

// Reusable buffers for one caller (grown on demand, never shrunk: no allocation in steady state).
struct MatmulScratch {
  std::vector<std::byte> xq;  // activations converted to vec_dot_type
};

// y[t * w.rows + r] = dot(w row r, x row t) for t < n, r < w.rows.
// x is [n][w.cols] float, y is [n][w.rows] float.
void matmul(const MatRef& w, const float* x, int64_t n, float* y, ThreadPool& pool, MatmulScratch& scratch);

// Several matrices of the same width over the same x (q, k and v; gate and up): one
// conversion of x per distinct kind the matrices take, and one pool loop over all their rows,
// instead of two pool loops per matrix. Each y as matmul's; at most 4 matrices.
struct MatmulTarget {
  const MatRef* w;
  float* y;
};
void matmul_many(std::span<const MatmulTarget> targets, const float* x, int64_t n, ThreadPool& pool, MatmulScratch& scratch);

// Same as matmul, with x already converted to vec_dot_type and relayout_x'd (rows x_stride bytes apart;
// see prepare_activations).
void matmul_prepared(const MatRef& w, const void* xq, size_t x_stride, int64_t n, float* y, ThreadPool& pool,
                     MatmulScratch& scratch);

// Dequantizes row r of w into dst[w.cols] (embedding lookup).
void get_row(const MatRef& w, int64_t r, float* dst);

}  // namespace zen::kernels
