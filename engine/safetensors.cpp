#include "engine/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

namespace zen::engine {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DTypeInfo {
  StDType t;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {StDType::BOOL, "BOOL", 1}, {StDType::U8, "U8", 1},   {StDType::I8, "I8", 1},
    {StDType::F8_E5M2, "F8_E5M2", 1}, {StDType::F8_E4M3, "F8_E4M3", 1}, {StDType::I16, "I16", 2},
    {StDType::U16, "U16", 2},   {StDType::F16, "F16", 2}, {StDType::BF16, "BF16", 2},
    {StDType::I32, "I32", 4},   {StDType::U32, "U32", 4}, {StDType::F32, "F32", 4},
    {StDType::F64, "F64", 8},   {StDType::I64, "I64", 8}, {StDType::U64, "U64", 8},
};

const DTypeInfo* dtype_by_name(std::string_view s) {
  for (const auto& d : kDTypes)
    if (s == d.name) return &d;
  return nullptr;
}

[[noreturn]] void fail(std::string_view file, const std::string& what) {
  throw SafetensorsError(std::string(file) + ": safetensors: " + what);
}

// A JSON number that is a non-negative integer, as uint64.
bool as_u64(const json& j, uint64_t& out) {
  if (j.is_number_unsigned()) { out = j.get<uint64_t>(); return true; }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) { out = static_cast<uint64_t>(j.get<int64_t>()); return true; }
  return false;
}

StTensor parse_entry(std::string_view file, const std::string& tname, const json& e, const SafetensorsLimits& limits,
                     size_t data_size) {
  const std::string where = "tensor '" + tname + "'";
  if (!e.is_object()) fail(file, where + " is not an object");
  for (const auto& [k, v] : e.items())
    if (k != "dtype" && k != "shape" && k != "data_offsets") fail(file, where + ": unknown field '" + k + "'");
  if (!e.contains("dtype") || !e["dtype"].is_string()) fail(file, where + ": missing or non-string dtype");
  const std::string dname = e["dtype"].get<std::string>();
  const DTypeInfo* dt = dtype_by_name(dname);
  if (!dt) fail(file, where + ": unknown dtype '" + dname + "'");
  if (!e.contains("shape") || !e["shape"].is_array()) fail(file, where + ": missing or non-array shape");
  const json& shape = e["shape"];
  if (shape.size() > limits.max_dims) fail(file, where + ": " + std::to_string(shape.size()) + " dimensions (max " +
                                                     std::to_string(limits.max_dims) + ")");
  StTensor t;
  t.name = tname;
  t.dtype = dt->t;
  uint64_t n = 1;
  for (const json& d : shape) {
    uint64_t v = 0;
    if (!as_u64(d, v) || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(file, where + ": shape entries must be non-negative integers");
    if (v != 0 && n > std::numeric_limits<uint64_t>::max() / v) fail(file, where + ": element count overflows");
    n *= v;
    t.shape.push_back(static_cast<int64_t>(v));
  }
  if (n > std::numeric_limits<uint64_t>::max() / dt->size) fail(file, where + ": byte count overflows");
  const uint64_t nbytes = n * dt->size;
  if (!e.contains("data_offsets") || !e["data_offsets"].is_array() || e["data_offsets"].size() != 2)
    fail(file, where + ": data_offsets must be [begin, end]");
  uint64_t b = 0, en = 0;
  if (!as_u64(e["data_offsets"][0], b) || !as_u64(e["data_offsets"][1], en))
    fail(file, where + ": data_offsets must be non-negative integers");
  if (b > en) fail(file, where + ": data_offsets begin " + std::to_string(b) + " > end " + std::to_string(en));
  if (en > data_size)
    fail(file, where + ": data_offsets end " + std::to_string(en) + " is past the data section (" + std::to_string(data_size) +
                   " bytes)");
  if (en - b != nbytes)
    fail(file, where + ": " + std::to_string(en - b) + " bytes for " + std::to_string(n) + " " + dt->name +
                   " elements (needs " + std::to_string(nbytes) + ")");
  t.begin = static_cast<size_t>(b);
  t.end = static_cast<size_t>(en);
  return t;
}

}  // namespace

const char* st_dtype_name(StDType t) { return kDTypes[static_cast<size_t>(t)].name; }
size_t st_dtype_size(StDType t) { return kDTypes[static_cast<size_t>(t)].size; }

int64_t StTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile SafetensorsFile::parse(std::span<const std::byte> bytes, std::string_view name, const SafetensorsLimits& limits) {
  SafetensorsFile f;
  f.name = std::string(name);
  if (bytes.size() < 8) fail(name, "file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  if (n > limits.max_header) fail(name, "header length " + std::to_string(n) + " exceeds the cap of " + std::to_string(limits.max_header));
  if (n > bytes.size() - 8)
    fail(name, "header length " + std::to_string(n) + " is past the end of the file (" + std::to_string(bytes.size()) + " bytes)");
  if (n < 2) fail(name, "header too short for a JSON object");
  const auto* h = reinterpret_cast<const char*>(bytes.data() + 8);
  if (h[0] != '{') fail(name, "header does not start with '{'");
  json j = json::parse(h, h + n, nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail(name, "header is not a valid JSON object");
  f.data_offset = 8 + static_cast<size_t>(n);
  const size_t data_size = bytes.size() - f.data_offset;
  if (j.size() > limits.max_tensors + 1) fail(name, "too many tensors (" + std::to_string(j.size()) + ")");

  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(name, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(name, "__metadata__ value '" + mk + "' is not a string");
        f.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    if (key.empty()) fail(name, "empty tensor name");
    f.tensors.push_back(parse_entry(name, key, value, limits, data_size));
  }
  std::sort(f.tensors.begin(), f.tensors.end(), [](const StTensor& a, const StTensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < f.tensors.size(); ++i) {
    const StTensor& a = f.tensors[i - 1];
    const StTensor& b = f.tensors[i];
    if (b.begin < a.end) fail(name, "tensors '" + a.name + "' and '" + b.name + "' overlap");
  }
  return f;
}

const StTensor* SafetensorsFile::find(std::string_view tname) const {
  for (const StTensor& t : tensors)
    if (t.name == tname) return &t;
  return nullptr;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open(const std::string& dir) {
  SafetensorsCheckpoint c;
  const fs::path root(dir);
  if (!fs::is_directory(root)) throw SafetensorsError(dir + ": not a directory");
  std::vector<std::string> shard_names;
  const fs::path index = root / "model.safetensors.index.json";
  json weight_map;
  if (fs::exists(index)) {
    std::ifstream in(index);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw SafetensorsError(index.string() + ": not a JSON object with a weight_map");
    weight_map = j["weight_map"];
    for (const auto& [tname, file] : weight_map.items()) {
      if (!file.is_string()) throw SafetensorsError(index.string() + ": weight_map['" + tname + "'] is not a file name");
      const std::string s = file.get<std::string>();
      if (s.empty() || s.find('/') != std::string::npos || s.find('\\') != std::string::npos || s == "." || s == "..")
        throw SafetensorsError(index.string() + ": shard name '" + s + "' must be a plain file name in the folder");
      if (std::find(shard_names.begin(), shard_names.end(), s) == shard_names.end()) shard_names.push_back(s);
    }
  } else {
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_regular_file() && e.path().extension() == ".safetensors") shard_names.push_back(e.path().filename().string());
  }
  std::sort(shard_names.begin(), shard_names.end());
  if (shard_names.empty()) throw SafetensorsError(dir + ": no *.safetensors files");

  for (const std::string& s : shard_names) {
    auto shard = std::make_unique<Shard>();
    const std::string path = (root / s).string();
    shard->map = MappedFile::open(path);
    shard->st = SafetensorsFile::parse(shard->map->bytes(), path);
    for (const StTensor& t : shard->st.tensors) {
      CheckpointTensor ct{&t, shard->map.get(), shard->st.data_offset + t.begin};
      if (!c.tensors_.emplace(t.name, ct).second)
        throw SafetensorsError(path + ": tensor '" + t.name + "' also appears in another shard");
      if (!weight_map.is_null()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || it->get<std::string>() != s)
          throw SafetensorsError(path + ": tensor '" + t.name + "' is not listed for this shard in " + index.string());
      }
    }
    c.files_.push_back(std::move(shard));
  }
  if (!weight_map.is_null())
    for (const auto& [tname, file] : weight_map.items())
      if (!c.tensors_.count(tname))
        throw SafetensorsError(index.string() + ": tensor '" + tname + "' is missing from " + file.get<std::string>());
  for (const auto& [n, t] : c.tensors_) c.order_.push_back(n);
  return c;
}

const CheckpointTensor* SafetensorsCheckpoint::find(std::string_view tname) const {
  auto it = tensors_.find(tname);
  return it == tensors_.end() ? nullptr : &it->second;
}

const CheckpointTensor& SafetensorsCheckpoint::at(std::string_view tname) const {
  const CheckpointTensor* t = find(tname);
  if (!t) throw SafetensorsError("checkpoint has no tensor '" + std::string(tname) + "'");
  return *t;
}

std::vector<std::byte> write_safetensors(const std::vector<StWriteTensor>& tensors, const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  size_t off = 0;
  for (const StWriteTensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    if (t.data.size() != static_cast<size_t>(n) * st_dtype_size(t.dtype))
      throw std::invalid_argument("write_safetensors: '" + t.name + "' has " + std::to_string(t.data.size()) +
                                  " bytes for its shape");
    h[t.name] = {{"dtype", st_dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {off, off + t.data.size()}}};
    off += t.data.size();
  }
  std::string hs = h.dump();
  while ((8 + hs.size()) % 8 != 0) hs += ' ';
  size_t total = 8 + hs.size();
  for (const StWriteTensor& t : tensors) total += t.data.size();
  std::vector<std::byte> out(total);
  const uint64_t n = hs.size();
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  std::memcpy(out.data() + 8, hs.data(), hs.size());
  size_t at = 8 + hs.size();
  for (const StWriteTensor& t : tensors) {
    if (!t.data.empty()) std::memcpy(out.data() + at, t.data.data(), t.data.size());
    at += t.data.size();
  }
  return out;
}

}  // namespace zen::engine
