// GGUF v3 writer. Metadata is kept in memory; tensor data is produced one tensor at a time
// while writing, so files larger than RAM can be written.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/gguf.h"

namespace zen::engine {

class GgufWriter {
 public:
  // Fills `dst` (exactly the tensor's byte size) with the tensor's data.
  using Producer = std::function<void(std::span<std::byte> dst)>;

  explicit GgufWriter(uint64_t alignment = 32);

  // Metadata setters replace an existing key of the same name (keeping its position).
  void set(const std::string& key, GgufValue v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, std::string v);
  void set_strings(const std::string& key, std::vector<std::string> v);
  void set_f32s(const std::string& key, const std::vector<float>& v);
  void set_i32s(const std::string& key, const std::vector<int32_t>& v);
  void remove(const std::string& key);

  // ne[0] is the row length. Throws if the name repeats or the shape does not fit the type.
  void add_tensor(const std::string& name, kernels::DType type, std::vector<int64_t> ne, Producer produce);
  void add_tensor(const std::string& name, kernels::DType type, std::vector<int64_t> ne, std::span<const std::byte> data);

  // Writes the file (to path + ".tmp", then renames), so a crash never leaves a half file.
  void write(const std::string& path) const;
  // Serializes to memory (tests, small files).
  std::vector<std::byte> to_bytes() const;

 private:
  struct Pending {
    TensorInfo info;
    Producer produce;
  };
  void emit(const std::function<void(const void*, size_t)>& out) const;

  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Pending> tensors_;
  uint64_t data_size_ = 0;
};

}  // namespace zen::engine
