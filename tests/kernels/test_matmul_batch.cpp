// matmul: a row's result does not depend on the batch it is computed in. A server batches the
// rows of whatever sequences are waiting, so a sequence must get the same logits (to the bit)
// alone, in a batch of 2, or in a batch of 13 - for every weight type, on every ISA level this
// CPU has, with one thread and two.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/repack.h"
#include "tests/kernels/kernel_test_util.h"

namespace zen::kernels {
namespace {

using testing::gaussian;

TEST(MatmulBatch, RowResultIndependentOfBatch) {
  const DType types[] = {DType::F32, DType::F16, DType::BF16, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                         DType::Q8_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  const int64_t cols = 512, rows = 40;  // rows: several blocks and a ragged tile edge
  const std::vector<float> wf = gaussian(static_cast<size_t>(rows * cols), 1);
  const std::vector<float> xf = gaussian(static_cast<size_t>(16 * cols), 2);
  int checked = 0;
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
    if (!isa_supported(isa)) continue;
    set_active_isa(isa);
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      MatmulScratch scratch;
      for (DType t : types) {
        const QuantizeFn q = ops(t, Isa::Scalar).quantize;
        if (!q || !ops(t).vec_dot) continue;
        SCOPED_TRACE(std::string(type_name(t)) + " " + isa_name(isa) + " threads " + std::to_string(threads));
        const size_t rb = row_bytes(t, cols);
        std::vector<std::byte> wq(rb * rows);
        for (int64_t r = 0; r < rows; ++r) q(wf.data() + r * cols, wq.data() + rb * static_cast<size_t>(r), cols);
        const MatRef w{t, wq.data(), rows, cols, rb};
        // Row 0 of x alone, then at every position of batches of 2, 5, 9 and 13 rows.
        std::vector<float> alone(static_cast<size_t>(rows));
        matmul(w, xf.data(), 1, alone.data(), pool, scratch);
        for (int64_t n : {2, 5, 9, 13}) {
          for (int64_t at = 0; at < n; at += (n > 5 ? 4 : 1)) {
            std::vector<float> x(static_cast<size_t>(n * cols));
            for (int64_t i = 0; i < n; ++i) {
              const int64_t src = i == at ? 0 : 1 + (i % 15);
              std::memcpy(x.data() + i * cols, xf.data() + src * cols, sizeof(float) * static_cast<size_t>(cols));
            }
            std::vector<float> y(static_cast<size_t>(n * rows));
            matmul(w, x.data(), n, y.data(), pool, scratch);
            for (int64_t r = 0; r < rows; ++r)
              ASSERT_EQ(y[static_cast<size_t>(at * rows + r)], alone[static_cast<size_t>(r)])
                  << "row " << r << " at position " << at << " of a batch of " << n;
          }
        }
        ++checked;
      }
    }
  }
  set_active_isa(detected_isa());
  EXPECT_GE(checked, 13);
}

// matmul_many: matrices of different types (and so different activation conversions) over
// the same x in one pass give what each gives alone from its whole-row conversion
// (prepare_activations + matmul_prepared), to the bit, with one thread and two.
TEST(MatmulMany, EqualsEachMatrixAlone) {
  const int64_t cols = 768, rows[] = {40, 12, 100, 8};
  const std::vector<float> xf = gaussian(static_cast<size_t>(13 * cols), 5);
  // mixed conversions (Q8_K, Q8_0, none), then one conversion with three relayouts where this
  // level has load-time layouts (Q4_K_X4, Q6_K_LANES, Q4_K)
  for (const bool repacked : {false, true})
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) continue;
    set_active_isa(isa);
    DType types[] = {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::F32};
    if (repacked) types[2] = DType::Q4_K, types[3] = DType::Q6_K;
    std::vector<std::vector<std::byte>> data(4);
    std::vector<MatRef> w(4);
    for (size_t i = 0; i < 4; ++i) {
      const DType t = types[i];
      const size_t rb = row_bytes(t, cols);
      const std::vector<float> wf = gaussian(static_cast<size_t>(rows[i] * cols), static_cast<uint32_t>(10 + i));
      data[i].resize(rb * static_cast<size_t>(rows[i]));
      for (int64_t r = 0; r < rows[i]; ++r) ops(t, Isa::Scalar).quantize(wf.data() + r * cols, data[i].data() + rb * static_cast<size_t>(r), cols);
      if (const auto to = repacked && i < 2 ? repack_target(t, isa, rows[i]) : std::nullopt) {
        std::vector<std::byte> out(data[i].size());
        repack(t, *to, data[i].data(), out.data(), rows[i], cols);
        data[i] = std::move(out);
        types[i] = *to;
      }
      w[i] = MatRef{types[i], data[i].data(), rows[i], cols, rb};
    }
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      MatmulScratch scratch, alone_scratch;
      for (int64_t n : {1, 3, 8, 13}) {
        SCOPED_TRACE(std::string(isa_name(isa)) + " threads " + std::to_string(threads) + " rows " + std::to_string(n));
        std::vector<std::vector<float>> y(4);
        std::vector<MatmulTarget> targets;
        for (size_t i = 0; i < 4; ++i) {
          y[i].assign(static_cast<size_t>(n * rows[i]), -1.f);
          targets.push_back({&w[i], y[i].data()});
        }
        matmul_many(targets, xf.data(), n, pool, scratch);
        for (size_t i = 0; i < 4; ++i) {
          const DType vt = type_info(types[i]).vec_dot_type;
          const size_t xs = vt == DType::F32 ? sizeof(float) * static_cast<size_t>(cols) : row_bytes(vt, cols);
          std::vector<std::byte> xq(xs * static_cast<size_t>(n));
          for (int64_t t = 0; t < n; ++t) prepare_activations(types[i], isa, xf.data() + t * cols, xq.data() + xs * static_cast<size_t>(t), cols);
          std::vector<float> want(y[i].size());
          matmul_prepared(w[i], xq.data(), xs, n, want.data(), pool, alone_scratch);
          ASSERT_EQ(0, std::memcmp(want.data(), y[i].data(), want.size() * sizeof(float))) << type_name(types[i]);
        }
      }
    }
  }
  set_active_isa(detected_isa());
  ThreadPool pool(1);
  MatmulScratch scratch;
  std::vector<float> x(1024), y(64);
  std::vector<std::byte> a(row_bytes(DType::Q8_0, 1024) * 8), b(row_bytes(DType::Q8_0, 512) * 8);
  const MatRef wide{DType::Q8_0, a.data(), 8, 1024, row_bytes(DType::Q8_0, 1024)}, narrow{DType::Q8_0, b.data(), 8, 512, row_bytes(DType::Q8_0, 512)};
  const MatmulTarget mixed[] = {{&wide, y.data()}, {&narrow, y.data()}};
  EXPECT_THROW(matmul_many(mixed, x.data(), 1, pool, scratch), std::invalid_argument);
  const MatmulTarget five[] = {{&wide, y.data()}, {&wide, y.data()}, {&wide, y.data()}, {&wide, y.data()}, {&wide, y.data()}};
  EXPECT_THROW(matmul_many(five, x.data(), 1, pool, scratch), std::invalid_argument);
}

}  // namespace
}  // namespace zen::kernels
