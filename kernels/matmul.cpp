#include "kernels/matmul.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/ops.h"

namespace zen::kernels {

namespace {
constexpr int64_t kTokenTile = 8;  // activation rows per tile

// How w_type's kernels in `table` want their activations: vec_dot_type's quantize, then the
// optional relayout. Throws when the conversion is missing.
struct ActivationPrep {
  QuantizeFn quantize;
  RelayoutFn relayout;
  void operator()(const float* src, void* dst, int64_t n) const {
    quantize(src, dst, n);
    if (relayout) relayout(dst, n);
  }
};
ActivationPrep activation_prep(DType w_type, const OpsTable& table) {
  const DType vt = type_info(w_type).vec_dot_type;
  const QuantizeFn quantize = table[static_cast<size_t>(vt)].quantize;
  if (!quantize) throw std::runtime_error(std::string("no activation conversion for ") + type_name(vt));
  return {quantize, table[static_cast<size_t>(w_type)].relayout_x};
}
}  // namespace

void matmul(const MatRef& w, const float* x, int64_t n, float* y, ThreadPool& pool, MatmulScratch& scratch) {
  const DType vt = type_info(w.type).vec_dot_type;
  if (vt == DType::F32) {
    matmul_prepared(w, x, static_cast<size_t>(w.cols) * sizeof(float), n, y, pool, scratch);
    return;
  }
  const ActivationPrep prep = activation_prep(w.type, ops_table());
  const size_t xs = row_bytes(vt, w.cols);
  if (scratch.xq.size() < xs * static_cast<size_t>(n)) scratch.xq.resize(xs * static_cast<size_t>(n));
  std::byte* xq = scratch.xq.data();
  pool.parallel_for(n, 4, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) prep(x + t * w.cols, xq + static_cast<size_t>(t) * xs, w.cols);
  });
  matmul_prepared(w, xq, xs, n, y, pool, scratch);
}

void matmul_prepared(const MatRef& w, const void* xq, size_t x_stride, int64_t n, float* y, ThreadPool& pool,
                     MatmulScratch& scratch) {
  const TypeOps& op = ops(w.type);
  if (!op.vec_dot && !op.gemm) throw std::runtime_error(std::string("no dot product for ") + type_name(w.type));
  const int nth = pool.size();
  // Row blocks: small enough that every thread gets several (load balance), large enough to
  // amortise the counter and keep a tile of weights hot across the activation rows.
  int64_t block = std::clamp<int64_t>(w.rows / (nth * 8), 4, 64);
  if (n == 1) block = std::clamp<int64_t>(w.rows / (nth * 16), 8, 256);
  block = (block + 3) / 4 * 4;
  // Tiny products are not worth waking another thread for.
  if (w.rows * w.cols * n < (int64_t{1} << 16)) block = w.rows;
  const auto* wbase = static_cast<const std::byte*>(w.data);
  const auto* xbase = static_cast<const std::byte*>(xq);
  const int64_t rows = w.rows, cols = w.cols;
  // A row's result must not depend on the batch it is in (a sequence generates the same text
  // whoever shares its batch): rows go through gemm whatever their number, except that a
  // lone row may take vec_dot when gemm is bit-identical to it. Types with interleaved rows
  // (kernels/repack.h) have no vec_dot: only gemm reads them.
  const bool use_gemm = op.gemm && (n > 1 || !op.gemm_exact || !op.vec_dot);
  pool.parallel_for(rows, block, [&](int64_t r0, int64_t r1, int) {
    {
      const int64_t nr = r1 - r0;
      const std::byte* wr = wbase + static_cast<size_t>(r0) * w.row_stride;
      for (int64_t t0 = 0; t0 < n; t0 += kTokenTile) {
        const int64_t nc = std::min(kTokenTile, n - t0);
        const std::byte* xt = xbase + static_cast<size_t>(t0) * x_stride;
        float* yt = y + t0 * rows + r0;
        if (use_gemm) {
          op.gemm(cols, nr, nc, wr, w.row_stride, xt, x_stride, yt, static_cast<size_t>(rows));
          continue;
        }
        for (int64_t r = 0; r < nr; ++r) {
          const std::byte* wrow = wr + static_cast<size_t>(r) * w.row_stride;
          for (int64_t c = 0; c < nc; ++c)
            yt[c * rows + r] = op.vec_dot(cols, wrow, xt + static_cast<size_t>(c) * x_stride);
        }
      }
    }
  });
}

void prepare_activations(DType w_type, Isa isa, const float* src, void* dst, int64_t n) {
  if (type_info(w_type).vec_dot_type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    return;
  }
  activation_prep(w_type, ops_table(isa))(src, dst, n);
}

void get_row(const MatRef& w, int64_t r, float* dst) {
  if (r < 0 || r >= w.rows) throw std::out_of_range("row " + std::to_string(r) + " out of range");
  const auto* src = static_cast<const std::byte*>(w.data) + static_cast<size_t>(r) * w.row_stride;
  if (w.type == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(w.cols) * sizeof(float));
    return;
  }
  const DequantizeFn deq = ops(w.type).dequantize;
  if (!deq) throw std::runtime_error(std::string("no dequantize for ") + type_name(w.type));
  deq(src, dst, w.cols);
}

}  // namespace zen::kernels
