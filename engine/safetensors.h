// Safetensors reader (Hugging Face checkpoints): a pure, bounds-checked parser over bytes,
// the checkpoint directory view (one file, or shards named by model.safetensors.index.json),
// and a small writer (tests, tools).
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data section.
// The JSON maps each tensor name to {"dtype": "F32", "shape": [rows, cols], "data_offsets":
// [begin, end]} with offsets relative to the start of the data section; an optional
// "__metadata__" object maps strings to strings. Shapes are row-major (the last dimension is
// contiguous), so a [rows, cols] tensor is GGUF ne = {cols, rows} with the same bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"

namespace zen::engine {

class SafetensorsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class StDType { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

const char* st_dtype_name(StDType t);
size_t st_dtype_size(StDType t);

struct StTensor {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;  // row-major, outermost first
  size_t begin = 0, end = 0;   // byte range inside the data section
  int64_t n_elements() const;
};

struct SafetensorsLimits {
  uint64_t max_header = 100u << 20;  // bytes of JSON
  size_t max_tensors = 1u << 20;
  size_t max_dims = 8;
};

class SafetensorsFile {
 public:
  // Parses the header of `bytes` (the whole file). Every tensor's dtype, shape and offsets are
  // validated: byte count = elements * dtype size, the range inside the data section, and no
  // two ranges overlap. `name` is used in messages.
  static SafetensorsFile parse(std::span<const std::byte> bytes, std::string_view name,
                               const SafetensorsLimits& limits = {});

  std::string name;
  size_t data_offset = 0;  // absolute offset of the data section (8 + header length)
  std::vector<StTensor> tensors;  // sorted by data offset
  std::map<std::string, std::string> metadata;

  const StTensor* find(std::string_view tname) const;
};

// One tensor of a checkpoint: its description and where its bytes are mapped.
struct CheckpointTensor {
  const StTensor* info = nullptr;
  const MappedFile* file = nullptr;
  size_t file_offset = 0;  // absolute offset of the first byte in `file`
  std::span<const std::byte> bytes() const { return file->bytes().subspan(file_offset, info->end - info->begin); }
};

// Every *.safetensors file of a Hugging Face checkpoint directory, memory-mapped. With
// model.safetensors.index.json the shards it names are opened and its weight_map checked
// against them; otherwise every *.safetensors file in the folder is used. Tensor names
// must be unique across shards.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open(const std::string& dir);

  const std::vector<std::string>& names() const { return order_; }  // sorted by name
  const CheckpointTensor* find(std::string_view tname) const;
  const CheckpointTensor& at(std::string_view tname) const;  // throws when missing
  size_t n_files() const { return files_.size(); }

 private:
  struct Shard {
    std::shared_ptr<MappedFile> map;
    SafetensorsFile st;
  };
  std::vector<std::unique_ptr<Shard>> files_;
  std::map<std::string, CheckpointTensor, std::less<>> tensors_;
  std::vector<std::string> order_;
};

// Serializes tensors as a safetensors file (data in the given order, 8-byte aligned header).
struct StWriteTensor {
  std::string name;
  StDType dtype = StDType::F32;
  std::vector<int64_t> shape;
  std::vector<std::byte> data;
};
std::vector<std::byte> write_safetensors(const std::vector<StWriteTensor>& tensors,
                                         const std::map<std::string, std::string>& metadata = {});

}  // namespace zen::engine
