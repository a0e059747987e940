// Node identity (static X25519 key pair in a 0600 key file) and the cluster
// secret (32 random bytes, base64). What `zen keygen` calls.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "transport/messages.h"

namespace zen::transport {

// Calls sodium_init() once; throws std::runtime_error if libsodium cannot start.
void ensure_sodium();

// Secret bytes wiped on destruction.
struct SecretKey {
  std::array<uint8_t, 32> bytes{};
  SecretKey() = default;
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();
};

struct KeyPair {
  PublicKey public_key{};
  SecretKey secret_key;
};

struct ClusterSecret {
  SecretKey key;
};

KeyPair generate_keypair();
// Derives the public key from a secret key.
KeyPair keypair_from_secret(const SecretKey& secret);

// Key file: text, "zen-node-key-v1\n" then "secret <base64>\n" and "public <base64>\n".
// write_key_file creates the file with mode 0600 and refuses to overwrite.
void write_key_file(const std::filesystem::path& path, const KeyPair& kp);
// Throws when the file is group- or world-accessible, malformed, or its public
// key does not match its secret key.
KeyPair load_key_file(const std::filesystem::path& path);
// First start: creates the key file (and its directory) if it does not exist.
KeyPair load_or_create_key_file(const std::filesystem::path& path, bool* created = nullptr);

ClusterSecret generate_cluster_secret();
// Exactly 32 bytes in standard base64 (surrounding whitespace allowed); throws otherwise.
ClusterSecret parse_cluster_secret(std::string_view base64);
std::string format_cluster_secret(const ClusterSecret& s);
// A file holding the base64 secret; the same permission rule as key files.
ClusterSecret load_cluster_secret_file(const std::filesystem::path& path);
void write_cluster_secret_file(const std::filesystem::path& path, const ClusterSecret& s);

std::string to_base64(std::span<const uint8_t> bytes);
// Throws std::invalid_argument on anything that is not standard padded base64.
std::vector<uint8_t> from_base64(std::string_view text);
// Public keys in configs and allow lists are base64 of the 32 bytes.
std::string format_public_key(const PublicKey& k);
PublicKey parse_public_key(std::string_view base64);

}  // namespace zen::transport
