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

namespace {

// One matrix's part of a pass: its rows in blocks, against activations already converted.
struct Part {
  const MatRef* w;
  const TypeOps* op;
  bool use_gemm;
  const std::byte* xq;
  size_t x_stride;
  float* y;
  int64_t block, blocks;
};

Part make_part(const MatRef& w, const void* xq, size_t x_stride, int64_t n, float* y, int nth) {
  const TypeOps& op = ops(w.type);
  if (!op.vec_dot && !op.gemm) throw std::runtime_error(std::string("no dot product for ") + type_name(w.type));
  // Row blocks: small enough that every thread gets several (load balance), large enough to
  // amortise the counter and keep a tile of weights hot across the activation rows.
  int64_t block = std::clamp<int64_t>(w.rows / (nth * 8), 4, 64);
  if (n == 1) block = std::clamp<int64_t>(w.rows / (nth * 16), 8, 256);
  block = (block + 3) / 4 * 4;
  // Tiny products are not worth waking another thread for.
  if (w.rows * w.cols * n < (int64_t{1} << 16)) block = w.rows;
  // A row's result must not depend on the batch it is in (a sequence generates the same text
  // whoever shares its batch): rows go through gemm whatever their number, except that a
  // lone row may take vec_dot when gemm is bit-identical to it. Types with interleaved rows
  // (kernels/repack.h) have no vec_dot: only gemm reads them.
  const bool use_gemm = op.gemm && (n > 1 || !op.gemm_exact || !op.vec_dot);
  return {&w, &op, use_gemm, static_cast<const std::byte*>(xq), x_stride, y, block, (w.rows + block - 1) / block};
}

// Rows r0 .. r1 of a part, for every activation row.
void run_rows(const Part& p, int64_t n, int64_t r0, int64_t r1) {
  const MatRef& w = *p.w;
  const int64_t nr = r1 - r0, rows = w.rows, cols = w.cols;
  const std::byte* wr = static_cast<const std::byte*>(w.data) + static_cast<size_t>(r0) * w.row_stride;
  for (int64_t t0 = 0; t0 < n; t0 += kTokenTile) {
    const int64_t nc = std::min(kTokenTile, n - t0);
    const std::byte* xt = p.xq + static_cast<size_t>(t0) * p.x_stride;
    float* yt = p.y + t0 * rows + r0;
    if (p.use_gemm) {
      p.op->gemm(cols, nr, nc, wr, w.row_stride, xt, p.x_stride, yt, static_cast<size_t>(rows));
      continue;
    }
    for (int64_t r = 0; r < nr; ++r) {
      const std::byte* wrow = wr + static_cast<size_t>(r) * w.row_stride;
      for (int64_t c = 0; c < nc; ++c) yt[c * rows + r] = p.op->vec_dot(cols, wrow, xt + static_cast<size_t>(c) * p.x_stride);
    }
  }
}

// Every part's row blocks in one pool loop (one barrier for all of them).
void run_parts(const Part* parts, size_t count, int64_t n, ThreadPool& pool) {
  int64_t total = 0;
  for (size_t i = 0; i < count; ++i) total += parts[i].blocks;
  pool.parallel_for(total, 1, [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; ++b) {
      size_t i = 0;
      int64_t k = b;
      while (k >= parts[i].blocks) k -= parts[i++].blocks;
      const int64_t r0 = k * parts[i].block;
      run_rows(parts[i], n, r0, std::min(r0 + parts[i].block, parts[i].w->rows));
    }
  });
}

}  // namespace

void matmul(const MatRef& w, const float* x, int64_t n, float* y, ThreadPool& pool, MatmulScratch& scratch) {
  const MatmulTarget one{&w, y};
  matmul_many(std::span(&one, 1), x, n, pool, scratch);
}

void matmul_many(std::span<const MatmulTarget> targets, const float* x, int64_t n, ThreadPool& pool, MatmulScratch& scratch) {
  if (targets.empty()) return;
  const int64_t cols = targets[0].w->cols;
  constexpr size_t kMax = 4;
  if (targets.size() > kMax) throw std::invalid_argument("matmul_many: at most 4 matrices");
  // One conversion per distinct one the matrices want (F32 activations need none).
  struct Conv {
    ActivationPrep prep;
    DType vt;
    size_t xs, offset;
  };
  Conv conv[kMax];
  size_t n_conv = 0, bytes = 0, conv_of[kMax];
  for (size_t i = 0; i < targets.size(); ++i) {
    const MatRef& w = *targets[i].w;
    if (w.cols != cols) throw std::invalid_argument("matmul_many: the matrices take different widths");
    const DType vt = type_info(w.type).vec_dot_type;
    conv_of[i] = kMax;
    if (vt == DType::F32) continue;
    const ActivationPrep prep = activation_prep(w.type, ops_table());
    size_t c = 0;
    while (c < n_conv && !(conv[c].vt == vt && conv[c].prep.quantize == prep.quantize && conv[c].prep.relayout == prep.relayout)) ++c;
    if (c == n_conv) {
      conv[n_conv++] = {prep, vt, row_bytes(vt, cols), bytes};
      bytes += row_bytes(vt, cols) * static_cast<size_t>(n);
    }
    conv_of[i] = c;
  }
  if (scratch.xq.size() < bytes) scratch.xq.resize(bytes);
  std::byte* xq = scratch.xq.data();
  if (n_conv > 0) {
    // Each row in pieces of whole blocks (every activation type converts block by block),
    // about 1024 values each, so that the few rows of a decode step are shared by the threads.
    int64_t bs = 1;  // a piece is whole blocks of every conversion (their sizes divide each other)
    for (size_t c = 0; c < n_conv; ++c) bs = std::max(bs, type_info(conv[c].vt).block_size);
    int64_t per = std::max<int64_t>(1, 1024 / bs);
    while ((cols / bs) % per != 0) --per;
    bool whole_blocks = cols % bs == 0;
    for (size_t c = 0; c < n_conv; ++c) whole_blocks = whole_blocks && bs % type_info(conv[c].vt).block_size == 0;
    const int64_t piece = whole_blocks && per * bs >= 256 ? per * bs : cols;  // else whole rows
    const int64_t pieces = cols / piece;
    pool.parallel_for(static_cast<int64_t>(n_conv) * n * pieces, 1, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) {
        const Conv& c = conv[t / (n * pieces)];
        const int64_t row = t / pieces % n, p = t % pieces;
        c.prep(x + row * cols + p * piece, xq + c.offset + static_cast<size_t>(row) * c.xs + row_bytes(c.vt, p * piece), piece);
      }
    });
  }
  Part parts[kMax];
  for (size_t i = 0; i < targets.size(); ++i) {
    const MatRef& w = *targets[i].w;
    parts[i] = conv_of[i] == kMax ? make_part(w, x, static_cast<size_t>(cols) * sizeof(float), n, targets[i].y, pool.size())
                                  : make_part(w, xq + conv[conv_of[i]].offset, conv[conv_of[i]].xs, n, targets[i].y, pool.size());
  }
  run_parts(parts, targets.size(), n, pool);
}

void matmul_prepared(const MatRef& w, const void* xq, size_t x_stride, int64_t n, float* y, ThreadPool& pool,
                     MatmulScratch&) {
  const Part part = make_part(w, xq, x_stride, n, y, pool.size());
  run_parts(&part, 1, n, pool);
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
