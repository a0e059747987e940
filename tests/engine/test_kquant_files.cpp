// K-quant kernels against tensors written by llama-quantize (no imatrix) from the same F32
// model: our dequantize must reproduce the F32 weights within the format's quantization
// noise, our reference quantizers must produce the same bytes as llama.cpp's, and every ISA's
// vec_dot must agree with the scalar one on these real blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "kernels/ops.h"
#include "tests/engine/testdata.h"

namespace zen {
namespace {

using kernels::DType;

bool is_k_quant(DType t) {
  return t == DType::Q2_K || t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
}

// Relative RMSE bound per type (error RMS over weight RMS) for these Gaussian weights: about
// 10% above what the K-quant formats reach at reference quality.
double rmse_bound(DType t) {
  switch (t) {
    case DType::Q2_K: return 0.33;
    case DType::Q3_K: return 0.17;
    case DType::Q4_K: return 0.077;
    case DType::Q5_K: return 0.039;
    default: return 0.019;
  }
}

struct FileStats {
  size_t tensors = 0, blocks = 0, blocks_equal = 0;
};

void check_file(const std::string& quant_name, FileStats& stats) {
  const auto dir = test::testdata_dir() / "models";
  const auto f32 = engine::GgufModelFile::open((dir / "synth-llama-F32.gguf").string());
  const auto qf = engine::GgufModelFile::open((dir / quant_name).string());
  for (const engine::TensorInfo& ti : qf->gguf().tensors) {
    if (!is_k_quant(ti.type)) continue;
    SCOPED_TRACE(quant_name + " " + ti.name + " " + kernels::type_name(ti.type));
    const engine::TensorInfo* ref = f32->gguf().find_tensor(ti.name);
    ASSERT_NE(ref, nullptr);
    ASSERT_EQ(ref->type, DType::F32);
    ASSERT_EQ(ref->n_elements(), ti.n_elements());
    const int64_t n = ti.n_elements(), row = ti.ne[0];
    const auto* xf = reinterpret_cast<const float*>(f32->tensor_data(*ref));
    const auto* qb = reinterpret_cast<const uint8_t*>(qf->tensor_data(ti));
    ++stats.tensors;

    // 1. Dequantized weights are the F32 weights plus quantization noise.
    std::vector<float> deq(static_cast<size_t>(n));
    kernels::ops(ti.type, kernels::Isa::Scalar).dequantize(qb, deq.data(), n);
    double err = 0, sig = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (double(deq[i]) - xf[i]) * (double(deq[i]) - xf[i]);
      sig += double(xf[i]) * xf[i];
    }
    const double rel = std::sqrt(err / sig);
    EXPECT_LT(rel, rmse_bound(ti.type));
    if (ti.name == "blk.0.ffn_up.weight" || ti.name == "blk.3.ffn_down.weight" || ti.name == "output.weight")
      std::cout << "[ rmse     ] " << quant_name << " " << ti.name << " " << kernels::type_name(ti.type) << " " << rel << "\n";
    EXPECT_GT(rel, 0.0);

    // 2. Our reference quantizer reproduces llama-quantize's bytes.
    std::vector<uint8_t> mine(ti.bytes);
    kernels::ops(ti.type, kernels::Isa::Scalar).quantize(xf, mine.data(), n);
    const size_t bb = kernels::type_info(ti.type).block_bytes;
    for (size_t off = 0; off < ti.bytes; off += bb) {
      ++stats.blocks;
      if (std::memcmp(mine.data() + off, qb + off, bb) == 0) ++stats.blocks_equal;
    }

    // 3. Every ISA's vec_dot agrees with the scalar one on these blocks (a few rows).
    const size_t rb = kernels::row_bytes(ti.type, row);
    std::vector<float> act(static_cast<size_t>(row));
    for (int64_t i = 0; i < row; ++i) act[i] = std::sin(0.37f * static_cast<float>(i)) * 2.f;
    std::vector<uint8_t> xq(kernels::row_bytes(DType::Q8_K, row));
    kernels::ops(DType::Q8_K, kernels::Isa::Scalar).quantize(act.data(), xq.data(), row);
    for (int64_t r = 0; r < std::min<int64_t>(ti.ne[1], 8); ++r) {
      const float want = kernels::ops(ti.type, kernels::Isa::Scalar).vec_dot(row, qb + rb * r, xq.data());
      double mag = 0;
      for (int64_t i = 0; i < row; ++i) mag += std::fabs(double(deq[row * r + i]) * act[i]);
      for (kernels::Isa isa : kernels::kAllIsas) {
        if (!kernels::isa_supported(isa)) continue;
        std::vector<uint8_t> xi(xq.size());
        kernels::prepare_activations(ti.type, isa, act.data(), xi.data(), row);
        EXPECT_NEAR(kernels::ops(ti.type, isa).vec_dot(row, qb + rb * r, xi.data()), want, 1e-5 * mag)
            << kernels::isa_name(isa) << " row " << r;
      }
    }
  }
}

TEST(KQuantFiles, MatchLlamaQuantizeOutput) {
  ZEN_REQUIRE_TESTDATA();
  for (const char* name : {"synth-llama-Q2_K.gguf", "synth-llama-Q4_K_M.gguf", "synth-llama-Q5_K_M.gguf",
                           "synth-llama-Q6_K.gguf"}) {
    FileStats st;
    check_file(name, st);
    std::cout << "[ blocks   ] " << name << ": " << st.tensors << " K-quant tensors, " << st.blocks_equal << "/"
              << st.blocks << " blocks byte-identical to llama-quantize\n";
    EXPECT_GT(st.tensors, 0u);
    // The search is re-implemented with the same float evaluation order, so all blocks match.
    EXPECT_EQ(st.blocks_equal, st.blocks) << name;
  }
}

}  // namespace
}  // namespace zen
