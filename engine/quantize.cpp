#include "engine/quantize.h"

#include <cstring>
#include <stdexcept>
#include <vector>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/model.h"
#include "kernels/ops.h"

namespace zen::engine {

using kernels::DType;

void convert_rows(DType src_type, const void* src, DType dst_type, void* dst, int64_t rows, int64_t cols,
                  kernels::ThreadPool& pool) {
  const size_t sb = kernels::row_bytes(src_type, cols), db = kernels::row_bytes(dst_type, cols);
  const auto* s = static_cast<const std::byte*>(src);
  auto* d = static_cast<std::byte*>(dst);
  if (src_type == dst_type) {
    std::memcpy(d, s, sb * static_cast<size_t>(rows));
    return;
  }
  const kernels::DequantizeFn deq = kernels::ops(src_type).dequantize;
  const kernels::QuantizeFn quant = kernels::ops(dst_type).quantize;
  if (src_type != DType::F32 && !deq) throw std::runtime_error(std::string("cannot read ") + kernels::type_name(src_type));
  if (dst_type != DType::F32 && !quant) throw std::runtime_error(std::string("cannot write ") + kernels::type_name(dst_type));
  std::vector<std::vector<float>> bufs(static_cast<size_t>(pool.size()), std::vector<float>(static_cast<size_t>(cols)));
  pool.parallel_for(rows, 1, [&](int64_t r, int64_t, int ith) {
    std::vector<float>& buf = bufs[static_cast<size_t>(ith)];
    {
      const std::byte* srow = s + static_cast<size_t>(r) * sb;
      std::byte* drow = d + static_cast<size_t>(r) * db;
      const float* f = reinterpret_cast<const float*>(srow);
      if (src_type != DType::F32) {
        deq(srow, buf.data(), cols);
        f = buf.data();
      }
      if (dst_type == DType::F32) std::memcpy(drow, f, static_cast<size_t>(cols) * sizeof(float));
      else quant(f, drow, cols);
    }
  });
}

void quantize_file(const std::string& in, const std::string& out, Mix mix, int threads,
                   const std::function<void(const QuantizeProgress&)>& progress) {
  if (in == out) throw std::invalid_argument("input and output are the same file");
  auto file = GgufModelFile::open(in);
  const GgufFile& g = file->gguf();
  const Hparams hp = Hparams::from_gguf(g);
  const bool tied = g.find_tensor("output.weight") == nullptr;
  const int n_gqa = static_cast<int>(hp.n_head / hp.n_head_kv);

  GgufWriter w(g.alignment);
  for (const auto& [key, value] : g.kv)
    if (key != "general.alignment") w.set(key, value);
  w.set_u32("general.file_type", mix_file_type(mix));
  w.set_u32("general.quantization_version", 2);

  auto pool = std::make_shared<kernels::ThreadPool>(std::max(1, threads));
  const size_t total = g.tensors.size();
  for (size_t i = 0; i < total; ++i) {
    const TensorInfo& t = g.tensors[i];
    DType dst = choose_type(mix, t.name, static_cast<int>(t.n_dims), t.ne[0], static_cast<int>(hp.n_layer), n_gqa, tied);
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    const std::byte* src = file->tensor_data(t);
    w.add_tensor(t.name, dst, ne, [=, &progress](std::span<std::byte> dstbuf) {
      if (progress) progress({i + 1, total, t.name.c_str(), dst});
      const int64_t rows = t.n_elements() / t.ne[0];
      convert_rows(t.type, src, dst, dstbuf.data(), rows, t.ne[0], *pool);
    });
  }
  w.write(out);
}

}  // namespace zen::engine
