#include "engine/gguf_writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace zen::engine {

GgufWriter::GgufWriter(uint64_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) throw std::invalid_argument("GGUF alignment must be a power of two");
  if (alignment != 32) set_u32("general.alignment", static_cast<uint32_t>(alignment));
}

void GgufWriter::set(const std::string& key, GgufValue v) {
  for (auto& [k, old] : kv_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::remove(const std::string& key) {
  std::erase_if(kv_, [&](const auto& p) { return p.first == key; });
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) { GgufValue g; g.type = GgufType::UINT32; g.i = v; set(key, std::move(g)); }
void GgufWriter::set_i32(const std::string& key, int32_t v) { GgufValue g; g.type = GgufType::INT32; g.i = v; set(key, std::move(g)); }
void GgufWriter::set_u64(const std::string& key, uint64_t v) { GgufValue g; g.type = GgufType::UINT64; g.i = static_cast<int64_t>(v); set(key, std::move(g)); }
void GgufWriter::set_f32(const std::string& key, float v) { GgufValue g; g.type = GgufType::FLOAT32; g.f = v; set(key, std::move(g)); }
void GgufWriter::set_bool(const std::string& key, bool v) { GgufValue g; g.type = GgufType::BOOL; g.i = v; set(key, std::move(g)); }
void GgufWriter::set_string(const std::string& key, std::string v) { GgufValue g; g.type = GgufType::STRING; g.s = std::move(v); set(key, std::move(g)); }
void GgufWriter::set_strings(const std::string& key, std::vector<std::string> v) {
  GgufValue g; g.type = GgufType::ARRAY; g.array_type = GgufType::STRING; g.strings = std::move(v); set(key, std::move(g));
}
void GgufWriter::set_f32s(const std::string& key, const std::vector<float>& v) {
  GgufValue g; g.type = GgufType::ARRAY; g.array_type = GgufType::FLOAT32; g.floats.assign(v.begin(), v.end()); set(key, std::move(g));
}
void GgufWriter::set_i32s(const std::string& key, const std::vector<int32_t>& v) {
  GgufValue g; g.type = GgufType::ARRAY; g.array_type = GgufType::INT32; g.ints.assign(v.begin(), v.end()); set(key, std::move(g));
}

void GgufWriter::add_tensor(const std::string& name, kernels::DType type, std::vector<int64_t> ne, Producer produce) {
  if (ne.empty() || ne.size() > 4) throw std::invalid_argument("tensor '" + name + "': 1 to 4 dimensions");
  for (const Pending& p : tensors_)
    if (p.info.name == name) throw std::invalid_argument("duplicate tensor name '" + name + "'");
  const kernels::TypeInfo& ti = kernels::type_info(type);
  TensorInfo t;
  t.name = name;
  t.n_dims = static_cast<uint32_t>(ne.size());
  int64_t n = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] <= 0) throw std::invalid_argument("tensor '" + name + "': non-positive dimension");
    t.ne[d] = ne[d];
    n *= ne[d];
  }
  if (t.ne[0] % ti.block_size != 0)
    throw std::invalid_argument("tensor '" + name + "': row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                                ti.name + " block size");
  t.type = type;
  t.bytes = static_cast<size_t>(n / ti.block_size) * ti.block_bytes;
  t.offset = data_size_;
  data_size_ += (t.bytes + alignment_ - 1) / alignment_ * alignment_;
  tensors_.push_back({std::move(t), std::move(produce)});
}

void GgufWriter::add_tensor(const std::string& name, kernels::DType type, std::vector<int64_t> ne, std::span<const std::byte> data) {
  std::vector<std::byte> copy(data.begin(), data.end());
  add_tensor(name, type, std::move(ne), [copy = std::move(copy), name](std::span<std::byte> dst) {
    std::memcpy(dst.data(), copy.data(), copy.size());
  });
  const size_t need = tensors_.back().info.bytes;
  if (need != data.size()) {
    data_size_ = tensors_.back().info.offset;
    tensors_.pop_back();
    throw std::invalid_argument("tensor '" + name + "': " + std::to_string(data.size()) + " bytes given, its shape needs " +
                                std::to_string(need));
  }
}

namespace {
struct Sink {
  const std::function<void(const void*, size_t)>& out;
  uint64_t written = 0;
  void raw(const void* p, size_t n) { out(p, n); written += n; }
  template <typename T> void put(T v) { raw(&v, sizeof v); }
  void str(const std::string& s) { put<uint64_t>(s.size()); raw(s.data(), s.size()); }
  void scalar(GgufType t, int64_t i, double f) {
    switch (t) {
      case GgufType::UINT8: put<uint8_t>(static_cast<uint8_t>(i)); break;
      case GgufType::INT8: put<int8_t>(static_cast<int8_t>(i)); break;
      case GgufType::UINT16: put<uint16_t>(static_cast<uint16_t>(i)); break;
      case GgufType::INT16: put<int16_t>(static_cast<int16_t>(i)); break;
      case GgufType::UINT32: put<uint32_t>(static_cast<uint32_t>(i)); break;
      case GgufType::INT32: put<int32_t>(static_cast<int32_t>(i)); break;
      case GgufType::UINT64: put<uint64_t>(static_cast<uint64_t>(i)); break;
      case GgufType::INT64: put<int64_t>(i); break;
      case GgufType::BOOL: put<uint8_t>(i ? 1 : 0); break;
      case GgufType::FLOAT32: put<float>(static_cast<float>(f)); break;
      case GgufType::FLOAT64: put<double>(f); break;
      default: throw std::logic_error("not a scalar GGUF type");
    }
  }
  void pad(uint64_t alignment) {
    static const char zeros[64] = {};
    uint64_t n = (alignment - written % alignment) % alignment;
    while (n) { size_t k = std::min<uint64_t>(n, sizeof zeros); raw(zeros, k); n -= k; }
  }
};
}  // namespace

void GgufWriter::emit(const std::function<void(const void*, size_t)>& out) const {
  Sink s{out};
  s.raw("GGUF", 4);
  s.put<uint32_t>(3);
  s.put<uint64_t>(tensors_.size());
  s.put<uint64_t>(kv_.size());
  for (const auto& [key, v] : kv_) {
    s.str(key);
    s.put<uint32_t>(static_cast<uint32_t>(v.type));
    if (v.type == GgufType::STRING) {
      s.str(v.s);
    } else if (v.type == GgufType::ARRAY) {
      s.put<uint32_t>(static_cast<uint32_t>(v.array_type));
      s.put<uint64_t>(v.array_size());
      if (v.array_type == GgufType::STRING) for (const auto& x : v.strings) s.str(x);
      else if (v.array_type == GgufType::FLOAT32 || v.array_type == GgufType::FLOAT64) for (double x : v.floats) s.scalar(v.array_type, 0, x);
      else for (int64_t x : v.ints) s.scalar(v.array_type, x, 0);
    } else {
      s.scalar(v.type, v.i, v.f);
    }
  }
  for (const Pending& p : tensors_) {
    s.str(p.info.name);
    s.put<uint32_t>(p.info.n_dims);
    for (uint32_t d = 0; d < p.info.n_dims; ++d) s.put<uint64_t>(static_cast<uint64_t>(p.info.ne[d]));
    s.put<uint32_t>(static_cast<uint32_t>(p.info.type));
    s.put<uint64_t>(p.info.offset);
  }
  s.pad(alignment_);
  std::vector<std::byte> buf;
  for (const Pending& p : tensors_) {
    buf.assign(p.info.bytes, std::byte{0});
    p.produce(buf);
    s.raw(buf.data(), buf.size());
    s.pad(alignment_);
  }
}

void GgufWriter::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw std::runtime_error(path + ": cannot open for writing");
  try {
    emit([&](const void* p, size_t n) {
      if (n && std::fwrite(p, 1, n, f) != n) throw std::runtime_error(path + ": write failed (disk full?)");
    });
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error(path + ": write failed on close");
  }
  std::filesystem::rename(tmp, path);
}

std::vector<std::byte> GgufWriter::to_bytes() const {
  std::vector<std::byte> out;
  emit([&](const void* p, size_t n) {
    auto b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  });
  return out;
}

}  // namespace zen::engine
