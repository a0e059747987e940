#include "engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace zen::engine {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "?";
}

namespace {

bool integer_type(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
    case GgufType::BOOL:
      return true;
    default:
      return false;
  }
}
bool float_type(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

}  // namespace

bool GgufValue::is_integer() const { return integer_type(type); }
bool GgufValue::is_float() const { return float_type(type); }
size_t GgufValue::array_size() const {
  if (type != GgufType::ARRAY) return 0;
  if (array_type == GgufType::STRING) return strings.size();
  if (float_type(array_type)) return floats.size();
  return ints.size();
}

// Reads little-endian values from a span, tracking the offset for error messages.
class GgufParser {
 public:
  GgufParser(std::span<const std::byte> bytes, std::string_view name, const GgufLimits& limits)
      : bytes_(bytes), name_(name), limits_(limits) {}

  GgufFile run(bool check_data);

 private:
  [[noreturn]] void fail(const std::string& field, size_t at, const std::string& what) const {
    throw GgufError(std::string(name_) + ": " + field + " at offset " + std::to_string(at) + ": " + what);
  }
  void need(size_t n, const std::string& field) const {
    if (n > bytes_.size() - pos_)
      fail(field, pos_, "truncated file (need " + std::to_string(n) + " bytes, " +
                            std::to_string(bytes_.size() - pos_) + " left)");
  }
  template <typename T>
  T read(const std::string& field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& field) {
    const size_t at = pos_;
    const uint64_t len = read<uint64_t>(field + " length");
    if (len > limits_.max_string) fail(field, at, "string length " + std::to_string(len) + " exceeds cap");
    need(static_cast<size_t>(len), field);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }
  int64_t read_int(GgufType t, const std::string& field) {
    switch (t) {
      case GgufType::UINT8: return read<uint8_t>(field);
      case GgufType::INT8: return read<int8_t>(field);
      case GgufType::UINT16: return read<uint16_t>(field);
      case GgufType::INT16: return read<int16_t>(field);
      case GgufType::UINT32: return read<uint32_t>(field);
      case GgufType::INT32: return read<int32_t>(field);
      case GgufType::UINT64: return static_cast<int64_t>(read<uint64_t>(field));
      case GgufType::INT64: return read<int64_t>(field);
      case GgufType::BOOL: {
        const size_t at = pos_;
        uint8_t b = read<uint8_t>(field);
        if (b > 1) fail(field, at, "bool value " + std::to_string(b) + " is not 0 or 1");
        return b;
      }
      default: return 0;
    }
  }
  static size_t scalar_size(GgufType t) {
    switch (t) {
      case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
      case GgufType::UINT16: case GgufType::INT16: return 2;
      case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
      case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
      default: return 0;
    }
  }
  GgufType read_type(const std::string& field) {
    const size_t at = pos_;
    uint32_t t = read<uint32_t>(field);
    if (t > static_cast<uint32_t>(GgufType::FLOAT64)) fail(field, at, "unknown value type " + std::to_string(t));
    return static_cast<GgufType>(t);
  }
  GgufValue read_value(GgufType type, const std::string& field);

  std::span<const std::byte> bytes_;
  std::string_view name_;
  const GgufLimits& limits_;
  size_t pos_ = 0;
};

GgufValue GgufParser::read_value(GgufType type, const std::string& field) {
  GgufValue v;
  v.type = type;
  if (integer_type(type)) {
    v.i = read_int(type, field);
  } else if (type == GgufType::FLOAT32) {
    v.f = read<float>(field);
  } else if (type == GgufType::FLOAT64) {
    v.f = read<double>(field);
  } else if (type == GgufType::STRING) {
    v.s = read_string(field);
  } else {  // ARRAY
    v.array_type = read_type(field + " element type");
    if (v.array_type == GgufType::ARRAY) fail(field, pos_ - 4, "nested arrays are not supported");
    const size_t at = pos_;
    const uint64_t n = read<uint64_t>(field + " count");
    if (n > limits_.max_array) fail(field, at, "array count " + std::to_string(n) + " exceeds cap");
    if (v.array_type == GgufType::STRING) {
      // each string needs at least its 8-byte length: reject impossible counts before reserving
      if (n > (bytes_.size() - pos_) / 8) fail(field, at, "array count " + std::to_string(n) + " exceeds file size");
      v.strings.reserve(static_cast<size_t>(n));
      for (uint64_t k = 0; k < n; ++k) v.strings.push_back(read_string(field + "[" + std::to_string(k) + "]"));
    } else {
      const size_t es = scalar_size(v.array_type);
      if (n > (bytes_.size() - pos_) / es) fail(field, at, "array of " + std::to_string(n) + " elements exceeds file size");
      if (float_type(v.array_type)) {
        v.floats.resize(static_cast<size_t>(n));
        for (auto& x : v.floats)
          x = v.array_type == GgufType::FLOAT32 ? static_cast<double>(read<float>(field)) : read<double>(field);
      } else {
        v.ints.resize(static_cast<size_t>(n));
        for (auto& x : v.ints) x = read_int(v.array_type, field);
      }
    }
  }
  return v;
}

GgufFile GgufParser::run(bool check_data) {
  GgufFile f;
  f.name = std::string(name_);
  need(4, "magic");
  if (std::memcmp(bytes_.data(), "GGUF", 4) != 0) fail("magic", 0, "not a GGUF file (bad magic)");
  pos_ = 4;
  f.version = read<uint32_t>("version");
  if (f.version != 2 && f.version != 3)
    fail("version", 4, "unsupported GGUF version " + std::to_string(f.version) + " (2 and 3 are supported)");
  const uint64_t n_tensors = read<uint64_t>("tensor count");
  if (n_tensors > limits_.max_tensors) fail("tensor count", 8, std::to_string(n_tensors) + " exceeds cap");
  const uint64_t n_kv = read<uint64_t>("metadata count");
  if (n_kv > limits_.max_kv) fail("metadata count", 16, std::to_string(n_kv) + " exceeds cap");

  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t at = pos_;
    std::string key = read_string("metadata key #" + std::to_string(k));
    if (f.kv_index_.count(key)) fail("metadata key '" + key + "'", at, "duplicate key");
    GgufType type = read_type("type of '" + key + "'");
    GgufValue v = read_value(type, "value of '" + key + "'");
    f.kv_index_.emplace(key, f.kv.size());
    f.kv.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = f.find("general.alignment")) {
    if (!a->is_integer() || a->type == GgufType::BOOL) fail("general.alignment", 0, "must be an integer");
    if (a->i <= 0 || a->i > (1 << 20) || (a->i & (a->i - 1)) != 0)
      fail("general.alignment", 0, "alignment " + std::to_string(a->i) + " is not a power of two in [1, 2^20]");
    f.alignment = static_cast<uint64_t>(a->i);
  }

  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    const size_t at = pos_;
    t.name = read_string("tensor name #" + std::to_string(k));
    const std::string field = "tensor '" + t.name + "'";
    if (f.tensor_index_.count(t.name)) fail(field, at, "duplicate tensor name");
    const size_t dims_at = pos_;
    t.n_dims = read<uint32_t>(field + " n_dims");
    if (t.n_dims == 0 || t.n_dims > limits_.max_dims)
      fail(field + " n_dims", dims_at, std::to_string(t.n_dims) + " dimensions (1.." + std::to_string(limits_.max_dims) + " allowed)");
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const size_t ne_at = pos_;
      const uint64_t ne = read<uint64_t>(field + " ne[" + std::to_string(d) + "]");
      if (ne == 0 || ne > (uint64_t{1} << 40)) fail(field + " ne[" + std::to_string(d) + "]", ne_at, "invalid dimension " + std::to_string(ne));
      if (n_el > std::numeric_limits<uint64_t>::max() / ne || n_el * ne > (uint64_t{1} << 42))
        fail(field, ne_at, "element count overflows");
      n_el *= ne;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    const size_t type_at = pos_;
    const uint32_t type_id = read<uint32_t>(field + " type");
    const kernels::TypeInfo* ti = kernels::find_type(type_id);
    if (!ti || ti->internal || ti->type == kernels::DType::Q8_1 || ti->type == kernels::DType::Q8_K)
      fail(field + " type", type_at, "unsupported tensor type id " + std::to_string(type_id));
    t.type = ti->type;
    if (t.ne[0] % ti->block_size != 0)
      fail(field, type_at, "row length " + std::to_string(t.ne[0]) + " is not a multiple of the " + ti->name +
                               " block size " + std::to_string(ti->block_size));
    t.bytes = static_cast<size_t>(n_el / static_cast<uint64_t>(ti->block_size)) * ti->block_bytes;
    const size_t off_at = pos_;
    t.offset = read<uint64_t>(field + " offset");
    if (t.offset % f.alignment != 0) fail(field + " offset", off_at, "offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(f.alignment));
    f.tensor_index_.emplace(t.name, f.tensors.size());
    f.tensors.push_back(std::move(t));
  }

  // Data section starts at the next multiple of the alignment.
  const uint64_t data = (pos_ + f.alignment - 1) / f.alignment * f.alignment;
  f.data_offset = static_cast<size_t>(data);
  if (check_data) {
    if (data > bytes_.size() && !f.tensors.empty()) fail("data section", pos_, "starts past the end of the file");
    const uint64_t avail = data <= bytes_.size() ? bytes_.size() - data : 0;
    for (const TensorInfo& t : f.tensors) {
      if (t.offset > avail || t.bytes > avail - t.offset)
        fail("tensor '" + t.name + "' data", static_cast<size_t>(data + std::min<uint64_t>(t.offset, avail)),
             "extends past the end of the file (offset " + std::to_string(t.offset) + " + " + std::to_string(t.bytes) +
                 " bytes > " + std::to_string(avail) + " bytes of data)");
    }
    // Overlapping tensors are rejected: sort by offset and compare neighbours.
    std::vector<const TensorInfo*> by_off;
    for (const TensorInfo& t : f.tensors) by_off.push_back(&t);
    std::sort(by_off.begin(), by_off.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_off.size(); ++k)
      if (by_off[k - 1]->offset + by_off[k - 1]->bytes > by_off[k]->offset)
        fail("tensor '" + by_off[k]->name + "' data", static_cast<size_t>(data + by_off[k]->offset),
             "overlaps tensor '" + by_off[k - 1]->name + "'");
  }
  return f;
}

GgufFile GgufFile::parse(std::span<const std::byte> bytes, std::string_view name, const GgufLimits& limits, bool check_data) {
  GgufParser p(bytes, name, limits);
  return p.run(check_data);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv[it->second].second;
}

const TensorInfo* GgufFile::find_tensor(std::string_view tname) const {
  auto it = tensor_index_.find(std::string(tname));
  return it == tensor_index_.end() ? nullptr : &tensors[it->second];
}

namespace {
[[noreturn]] void wrong_type(const GgufFile& f, std::string_view key, const GgufValue& v, const char* want) {
  throw GgufError(f.name + ": metadata '" + std::string(key) + "' has type " + gguf_type_name(v.type) +
                  (v.type == GgufType::ARRAY ? std::string(" of ") + gguf_type_name(v.array_type) : "") +
                  ", expected " + want);
}
}  // namespace

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) wrong_type(*this, key, *v, "an integer");
  return v->i;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_integer() && v->type != GgufType::BOOL) return static_cast<double>(v->i);
  wrong_type(*this, key, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL) wrong_type(*this, key, *v, "bool");
  return v->i != 0;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) wrong_type(*this, key, *v, "string");
  return v->s;
}

const std::vector<std::string>* GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || v->array_type != GgufType::STRING) wrong_type(*this, key, *v, "array of string");
  return &v->strings;
}

const std::vector<double>* GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || !float_type(v->array_type)) wrong_type(*this, key, *v, "array of float");
  return &v->floats;
}

const std::vector<int64_t>* GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || !integer_type(v->array_type)) wrong_type(*this, key, *v, "array of integer");
  return &v->ints;
}

// ---- MappedFile ----

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw GgufError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw GgufError(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw GgufError(path + ": not a regular file");
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<size_t>(st.st_size);
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw GgufError(path + ": mmap failed: " + std::strerror(e));
    }
    m->data_ = static_cast<const std::byte*>(p);
    // No read-around: a node touches only its slice, and the header parse must not pull
    // the whole file in by sequential readahead. Slices prefetch with will_need().
    m->random_access();
  }
  ::close(fd);
  return m;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

namespace {
void advise(const std::byte* base, size_t size, size_t offset, size_t len, int advice) {
  if (!base || offset >= size) return;
  len = std::min(len, size - offset);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page;
  ::madvise(const_cast<std::byte*>(base) + start, len + (offset - start), advice);
}
}  // namespace

void MappedFile::will_need(size_t offset, size_t len) const { advise(data_, size_, offset, len, MADV_WILLNEED); }
void MappedFile::dont_need(size_t offset, size_t len) const { advise(data_, size_, offset, len, MADV_DONTNEED); }
void MappedFile::random_access() const { advise(data_, size_, 0, size_, MADV_RANDOM); }

std::shared_ptr<GgufModelFile> GgufModelFile::open(const std::string& path, const GgufLimits& limits) {
  auto mf = std::make_shared<GgufModelFile>();
  mf->map_ = MappedFile::open(path);
  mf->gguf_ = GgufFile::parse(mf->map_->bytes(), path, limits, true);
  return mf;
}

}  // namespace zen::engine
