// Bit compatibility with llama.cpp: the synthetic test models were quantized by llama-quantize
// from synth-llama-F32.gguf. Quantizing the same F32 tensors with our quantizers (every ISA
// level) must reproduce the stored Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, F16 and BF16 bytes exactly.
//
// test_kernels links only zen_kernels, so this file walks the GGUF container itself (just the
// parts needed to find tensor data; engine/ owns the real reader).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

struct TensorRef {
  uint32_t type;
  uint64_t elements;
  uint64_t offset;  // from the start of the file
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    bytes_.assign(std::istreambuf_iterator<char>(f), {});
    if (take<uint32_t>() != 0x46554747u) throw std::runtime_error("not a GGUF file: " + path);
    if (take<uint32_t>() != 3) throw std::runtime_error("unexpected GGUF version");
    const uint64_t n_tensors = take<uint64_t>(), n_kv = take<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = take_string();
      const uint32_t vtype = take<uint32_t>();
      if (key == "general.alignment" && vtype == 4) alignment = take<uint32_t>();
      else skip_value(vtype);
    }
    for (uint64_t i = 0; i < n_tensors; ++i) {
      const std::string name = take_string();
      const uint32_t dims = take<uint32_t>();
      uint64_t elements = 1;
      for (uint32_t d = 0; d < dims; ++d) elements *= take<uint64_t>();
      const uint32_t type = take<uint32_t>();
      tensors_[name] = {type, elements, take<uint64_t>()};
    }
    const uint64_t data = (pos_ + alignment - 1) / alignment * alignment;
    for (auto& [name, t] : tensors_) {
      t.offset += data;
      const TypeInfo* ti = find_type(t.type);
      if (!ti || t.offset + row_bytes(ti->type, static_cast<int64_t>(t.elements)) > bytes_.size())
        throw std::runtime_error("tensor out of bounds: " + name);
    }
  }

  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }
  const uint8_t* data(const TensorRef& t) const { return bytes_.data() + t.offset; }

 private:
  template <class T>
  T take() {
    if (pos_ + sizeof(T) > bytes_.size()) throw std::runtime_error("truncated GGUF");
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string take_string() {
    const uint64_t n = take<uint64_t>();
    if (n > bytes_.size() - pos_) throw std::runtime_error("truncated GGUF string");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void skip_value(uint32_t vtype) {
    static const size_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (vtype == 8) {
      take_string();
    } else if (vtype == 9) {
      const uint32_t item = take<uint32_t>();
      const uint64_t count = take<uint64_t>();
      for (uint64_t i = 0; i < count; ++i) skip_value(item);
    } else if (vtype < 13) {
      if (kSizes[vtype] > bytes_.size() - pos_) throw std::runtime_error("truncated GGUF value");
      pos_ += kSizes[vtype];
    } else {
      throw std::runtime_error("unknown GGUF value type " + std::to_string(vtype));
    }
  }

  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
  std::map<std::string, TensorRef> tensors_;
};

std::filesystem::path models_dir() { return std::filesystem::path(ZEN_TESTDATA_DIR) / "models"; }

TEST(LegacyGguf, QuantizersReproduceLlamaQuantizeBytes) {
  const auto f32_path = models_dir() / "synth-llama-F32.gguf";
  if (!std::filesystem::exists(f32_path)) GTEST_SKIP() << "reference models not found under " << models_dir();
  const GgufFile f32(f32_path.string());
  int compared = 0;
  for (const char* file : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "F16", "BF16"}) {
    const auto path = models_dir() / ("synth-llama-" + std::string(file) + ".gguf");
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << "missing " << path;
      continue;
    }
    const GgufFile quant(path.string());
    for (const auto& [name, ref] : quant.tensors()) {
      const DType t = static_cast<DType>(ref.type);
      if (type_info(t).block_size == QK_K || t == DType::F32) continue;  // K-quant output, norms
      const TensorRef& src = f32.tensors().at(name);
      ASSERT_EQ(src.elements, ref.elements) << name;
      const auto n = static_cast<int64_t>(src.elements);
      const auto* x = reinterpret_cast<const float*>(f32.data(src));
      std::vector<uint8_t> got(row_bytes(t, n));
      for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
        if (!isa_supported(isa)) continue;
        ops(t, isa).quantize(x, got.data(), n);
        EXPECT_EQ(0, std::memcmp(got.data(), quant.data(ref), got.size()))
            << file << " " << name << " (" << type_name(t) << ") " << isa_name(isa);
      }
      ++compared;
    }
  }
  EXPECT_GT(compared, 50);
}

}  // namespace
}  // namespace zen::kernels
