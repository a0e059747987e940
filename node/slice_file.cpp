#include "node/slice_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "engine/gguf_writer.h"

namespace zen::node {

namespace fs = std::filesystem;

static_assert(sizeof(crypto_generichash_state) <= 384, "DigestState buffer too small");

std::string hex(const Digest& d) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

DigestState::DigestState() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_), nullptr, 0, 32);
}

void DigestState::update(const void* data, size_t n) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), static_cast<const unsigned char*>(data), n);
}

Digest DigestState::final() {
  Digest d(32);
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), d.data(), d.size());
  return d;
}

Digest file_digest(const fs::path& path, const fs::path& cache_dir) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error(path.string() + ": cannot stat: " + std::strerror(errno));
  fs::path cached;
  if (!cache_dir.empty()) {
    cached = cache_dir / "digests" /
             (std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino) + "-" + std::to_string(st.st_size) + "-" +
              std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
    std::ifstream in(cached);
    std::string line;
    if (in && std::getline(in, line) && line.size() == 64) {
      Digest d(32);
      for (size_t i = 0; i < 32; ++i) d[i] = static_cast<uint8_t>(std::stoi(line.substr(2 * i, 2), nullptr, 16));
      return d;
    }
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path.string() + ": cannot open: " + std::strerror(errno));
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  DigestState ds;
  std::vector<unsigned char> buf(size_t{4} << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw std::runtime_error(path.string() + ": read failed: " + std::strerror(errno));
    }
    if (n == 0) break;
    ds.update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  Digest d = ds.final();
  if (!cached.empty()) {
    std::error_code ec;
    fs::create_directories(cached.parent_path(), ec);
    std::ofstream(cached) << hex(d) << "\n";
  }
  return d;
}

std::string slice_file_name(const Digest& model_digest, const SliceSpecFile& s) {
  return hex(model_digest) + "-" + std::to_string(s.first_layer) + "-" + std::to_string(s.end_layer) + "-" +
         (s.embed ? "e" : "") + (s.head ? "h" : "") + ".gguf";
}

void write_slice_file(const engine::GgufModelFile& src, const SliceSpecFile& spec, const fs::path& out) {
  const engine::GgufFile& g = src.gguf();
  engine::GgufWriter w(g.alignment);
  for (const auto& [key, value] : g.kv)
    if (key != "general.alignment") w.set(key, value);
  w.set_u32("zen.slice.first_layer", static_cast<uint32_t>(spec.first_layer));
  w.set_u32("zen.slice.end_layer", static_cast<uint32_t>(spec.end_layer));
  w.set_bool("zen.slice.embed", spec.embed);
  w.set_bool("zen.slice.head", spec.head);
  const bool tied = g.find_tensor("output.weight") == nullptr;
  for (const engine::TensorInfo& t : g.tensors) {
    bool keep = false;
    if (t.name.rfind("blk.", 0) == 0) {
      const long il = std::strtol(t.name.c_str() + 4, nullptr, 10);
      keep = il >= spec.first_layer && il < spec.end_layer;
    } else if (t.name == "token_embd.weight") {
      keep = spec.embed || (spec.head && tied);
    } else if (t.name == "output.weight" || t.name == "output_norm.weight") {
      keep = spec.head;
    }
    if (!keep) continue;
    const std::byte* data = src.tensor_data(t);
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                 [data](std::span<std::byte> dst) { std::memcpy(dst.data(), data, dst.size()); });
  }
  w.write(out.string());
}

}  // namespace zen::node
