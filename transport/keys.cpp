#include "transport/keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace zen::transport {
namespace fs = std::filesystem;

void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("libsodium failed to initialise");
}

SecretKey::~SecretKey() { sodium_memzero(bytes.data(), bytes.size()); }

KeyPair generate_keypair() {
  ensure_sodium();
  KeyPair kp;
  crypto_box_keypair(kp.public_key.data(), kp.secret_key.bytes.data());
  return kp;
}

KeyPair keypair_from_secret(const SecretKey& secret) {
  ensure_sodium();
  KeyPair kp;
  kp.secret_key = secret;
  if (crypto_scalarmult_base(kp.public_key.data(), secret.bytes.data()) != 0) {
    throw std::invalid_argument("invalid X25519 secret key");
  }
  return kp;
}

std::string to_base64(std::span<const uint8_t> bytes) {
  ensure_sodium();
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::vector<uint8_t> from_base64(std::string_view text) {
  ensure_sodium();
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  std::vector<uint8_t> out(text.size() / 4 * 3 + 3);
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    throw std::invalid_argument("not valid base64");
  }
  out.resize(n);
  return out;
}

namespace {

std::array<uint8_t, 32> parse_32(std::string_view base64, const char* what) {
  std::vector<uint8_t> v;
  try {
    v = from_base64(base64);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(std::string(what) + " is not valid base64");
  }
  if (v.size() != 32) {
    sodium_memzero(v.data(), v.size());
    throw std::invalid_argument(std::string(what) + " must be 32 bytes, got " + std::to_string(v.size()));
  }
  std::array<uint8_t, 32> a;
  std::memcpy(a.data(), v.data(), 32);
  sodium_memzero(v.data(), v.size());
  return a;
}

// Secrets must not be readable by anyone but the owner.
void check_private(const fs::path& path, int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) throw std::runtime_error("cannot stat " + path.string() + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(path.string() + " is not a regular file");
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw std::runtime_error("refusing to use " + path.string() + ": mode " + mode +
                             " lets group or others access it (run: chmod 600 " + path.string() + ")");
  }
}

std::string read_private_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
  std::string data;
  try {
    check_private(path, fd);
    char buf[512];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
      if (n == 0) break;
      data.append(buf, static_cast<size_t>(n));
      if (data.size() > 4096) throw std::runtime_error(path.string() + " is too large for a key file");
    }
  } catch (...) {
    ::close(fd);
    sodium_memzero(data.data(), data.size());
    throw;
  }
  ::close(fd);
  return data;
}

void write_private_file(const fs::path& path, const std::string& content) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path.string() + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw std::runtime_error("cannot write " + path.string());
}

constexpr std::string_view kKeyFileMagic = "zen-node-key-v1";

}  // namespace

void write_key_file(const fs::path& path, const KeyPair& kp) {
  std::string content = std::string(kKeyFileMagic) + "\nsecret " + to_base64(kp.secret_key.bytes) + "\npublic " +
                        to_base64(kp.public_key) + "\n";
  write_private_file(path, content);
  sodium_memzero(content.data(), content.size());
}

KeyPair load_key_file(const fs::path& path) {
  std::string data = read_private_file(path);
  std::istringstream in(data);
  std::string magic, k1, v1, k2, v2, extra;
  in >> magic >> k1 >> v1 >> k2 >> v2;
  bool junk = static_cast<bool>(in >> extra);
  sodium_memzero(data.data(), data.size());
  if (magic != kKeyFileMagic || k1 != "secret" || k2 != "public" || junk) {
    throw std::runtime_error(path.string() + " is not a zen key file (expected '" + std::string(kKeyFileMagic) +
                             "', 'secret <base64>', 'public <base64>')");
  }
  SecretKey sk;
  try {
    sk.bytes = parse_32(v1, "secret key");
  } catch (const std::invalid_argument& e) {
    sodium_memzero(v1.data(), v1.size());
    throw std::runtime_error(path.string() + ": " + e.what());
  }
  sodium_memzero(v1.data(), v1.size());
  KeyPair kp = keypair_from_secret(sk);
  PublicKey stated;
  try {
    stated = parse_32(v2, "public key");
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
  if (stated != kp.public_key) throw std::runtime_error(path.string() + ": public key does not match the secret key");
  return kp;
}

KeyPair load_or_create_key_file(const fs::path& path, bool* created) {
  std::error_code ec;
  bool exists = fs::exists(fs::symlink_status(path, ec));
  if (created) *created = !exists;
  if (exists) return load_key_file(path);
  KeyPair kp = generate_keypair();
  write_key_file(path, kp);
  return kp;
}

ClusterSecret generate_cluster_secret() {
  ensure_sodium();
  ClusterSecret s;
  randombytes_buf(s.key.bytes.data(), s.key.bytes.size());
  return s;
}

ClusterSecret parse_cluster_secret(std::string_view base64) {
  ClusterSecret s;
  s.key.bytes = parse_32(base64, "cluster secret");
  return s;
}

std::string format_cluster_secret(const ClusterSecret& s) { return to_base64(s.key.bytes); }

ClusterSecret load_cluster_secret_file(const fs::path& path) {
  std::string data = read_private_file(path);
  try {
    ClusterSecret s = parse_cluster_secret(data);
    sodium_memzero(data.data(), data.size());
    return s;
  } catch (const std::invalid_argument& e) {
    sodium_memzero(data.data(), data.size());
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

void write_cluster_secret_file(const fs::path& path, const ClusterSecret& s) {
  std::string content = format_cluster_secret(s) + "\n";
  write_private_file(path, content);
  sodium_memzero(content.data(), content.size());
}

std::string format_public_key(const PublicKey& k) { return to_base64(k); }

PublicKey parse_public_key(std::string_view base64) { return parse_32(base64, "public key"); }

}  // namespace zen::transport
