// GGUF v2/v3 reader: a pure, bounds-checked parser over bytes, plus a memory-mapped file.
//
// Layout (little-endian): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv
// (string key, u32 type, value), then n_tensors (string name, u32 n_dims, u64 ne[n_dims],
// u32 type, u64 offset), padding to `general.alignment` (default 32), then tensor data.
// Strings are u64 length + bytes (no terminator).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kernels/types.h"

namespace zen::engine {

// Every parse or validation failure. The message names the file, the field and the offset.
class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class GgufType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Scalars use the field matching their type class; arrays keep their
// element type and store elements in `ints` (all integer types and bool, UINT64 bit-cast),
// `floats` (FLOAT32/FLOAT64) or `strings`. Nested arrays are rejected by the parser.
struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType array_type = GgufType::UINT8;  // element type when type == ARRAY
  int64_t i = 0;                          // integer and bool scalars
  double f = 0;                           // float scalars
  std::string s;                          // string scalar
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  bool is_integer() const;
  bool is_float() const;
  size_t array_size() const;
};

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  kernels::DType type = kernels::DType::F32;
  uint64_t offset = 0;  // from the start of the data section
  size_t bytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

// Parse limits; the defaults are generous for any real model.
struct GgufLimits {
  uint64_t max_tensors = 1u << 20;
  uint64_t max_kv = 1u << 20;
  uint64_t max_string = 1u << 26;       // 64 MiB (chat templates are long, but not that long)
  uint64_t max_array = 1u << 26;        // elements
  uint32_t max_dims = 4;
};

class GgufFile {
 public:
  // Parses the header, metadata and tensor infos from `bytes` (the whole file, or at least
  // everything up to the end of the last tensor). `name` is used in error messages.
  // Tensor extents are checked against bytes.size(); pass check_data=false to parse a
  // header-only prefix (then the data section is not bounds-checked).
  static GgufFile parse(std::span<const std::byte> bytes, std::string_view name,
                        const GgufLimits& limits = {}, bool check_data = true);

  uint32_t version = 0;
  uint64_t alignment = 32;
  size_t data_offset = 0;  // absolute offset of the data section
  std::string name;        // file name for messages

  std::vector<std::pair<std::string, GgufValue>> kv;  // in file order
  std::vector<TensorInfo> tensors;                     // in file order

  const GgufValue* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view tname) const;

  // Typed getters: nullopt when the key is absent; GgufError when present with a type that
  // cannot represent the request (e.g. a string read as an integer).
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;  // accepts integers too
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // Arrays: nullptr when absent; GgufError when the key holds something else.
  const std::vector<std::string>* get_string_array(std::string_view key) const;
  const std::vector<double>* get_float_array(std::string_view key) const;
  const std::vector<int64_t>* get_int_array(std::string_view key) const;

 private:
  std::unordered_map<std::string, size_t> kv_index_;
  std::unordered_map<std::string, size_t> tensor_index_;
  friend class GgufParser;
};

// A read-only memory map of a whole file. Pages are touched only when read.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }
  // Hint that [offset, offset+len) will be read soon / is no longer needed.
  void will_need(size_t offset, size_t len) const;
  void dont_need(size_t offset, size_t len) const;
  // Turns off the kernel's read-around for the whole map, so that faulting one tensor does
  // not read its neighbours (a node maps only its slice); will_need then prefetches ranges.
  void random_access() const;

 private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// A parsed GGUF with its mapping: tensor data pointers point into the map.
class GgufModelFile {
 public:
  static std::shared_ptr<GgufModelFile> open(const std::string& path, const GgufLimits& limits = {});
  const GgufFile& gguf() const { return gguf_; }
  const MappedFile& map() const { return *map_; }
  const std::byte* tensor_data(const TensorInfo& t) const {
    return map_->bytes().data() + gguf_.data_offset + t.offset;
  }

 private:
  std::shared_ptr<MappedFile> map_;
  GgufFile gguf_;
};

}  // namespace zen::engine
