// matmul: a row's result does not depend on the batch it is computed in. A server batches the
// rows of whatever sequences are waiting, so a sequence must get the same logits (to the bit)
// alone, in a batch of 2, or in a batch of 13 - for every weight type, on every ISA level this
// CPU has, with one thread and two.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "kernels/matmul.h"
#include "kernels/ops.h"
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

}  // namespace
}  // namespace zen::kernels
