// `zen quantize`: rewrite a GGUF with its matrices in another block format (per a mix),
// and the row conversion it (and `zen synth`) is built on.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "engine/quant_mix.h"
#include "kernels/threadpool.h"

namespace zen::engine {

// Converts `rows` rows of `cols` elements from src_type to dst_type, rows split over the pool.
void convert_rows(kernels::DType src_type, const void* src, kernels::DType dst_type, void* dst, int64_t rows,
                  int64_t cols, kernels::ThreadPool& pool);

struct QuantizeProgress {
  size_t tensors_done = 0, tensors_total = 0;
  const char* name = "";
  kernels::DType type = kernels::DType::F32;
};

// Reads `in`, writes `out` with every tensor converted as choose_type() says for `mix`
// (tensors already of that type are copied unchanged). Metadata is copied, with
// general.file_type set to the mix.
void quantize_file(const std::string& in, const std::string& out, Mix mix, int threads,
                   const std::function<void(const QuantizeProgress&)>& progress = {});

}  // namespace zen::engine
