// LAN discovery beacons: pure encode / verify over bytes (fuzzable), no sockets.
//
// A beacon says "node <name>, a <role>, takes peer links on TCP <port>, its identity key is
// <public key>". It carries nothing secret. It is authenticated with crypto_auth
// (HMAC-SHA-512-256) under a key derived from the cluster secret (crypto_kdf, context
// "zen-disc", subkey 1), so only cluster members can make one: a stranger cannot inject
// peers. Freshness (timestamp within a skew window) and replay (nonce already seen) are
// checked by ReplayGuard, which holds the only state.
//
// Wire layout (little-endian), 98 + name bytes, at most 162:
//   [0]   magic "ZENB"          4 bytes
//   [4]   protocol version      u16 (kProtocolVersion)
//   [6]   role                  u8  (1 coordinator, 2 worker)
//   [7]   name length           u8  (1..64)
//   [8]   TCP listen port       u16 (nonzero)
//   [10]  timestamp             u64 (Unix milliseconds of the sender's clock)
//   [18]  nonce                 16 random bytes
//   [34]  public key            32 bytes (X25519, the node's identity)
//   [66]  name                  printable UTF-8 bytes
//   [66+n] MAC                  32 bytes over everything before it
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "transport/keys.h"

namespace zen::transport {

enum class BeaconRole : uint8_t { coordinator = 1, worker = 2 };
const char* beacon_role_name(BeaconRole r);

inline constexpr size_t kBeaconMaxName = 64;
inline constexpr size_t kBeaconHeaderBytes = 66;
inline constexpr size_t kBeaconMacBytes = 32;
inline constexpr size_t kBeaconMaxBytes = kBeaconHeaderBytes + kBeaconMaxName + kBeaconMacBytes;

using BeaconNonce = std::array<uint8_t, 16>;

struct Beacon {
  uint16_t version = kProtocolVersion;
  BeaconRole role = BeaconRole::worker;
  std::string name;         // 1..64 printable bytes (no control characters)
  uint16_t tcp_port = 0;    // where the node accepts peer links
  PublicKey public_key{};   // the node's static identity key
  uint64_t timestamp_ms = 0;  // Unix time of the sender
  BeaconNonce nonce{};
};

// The beacon MAC key: crypto_kdf_derive_from_key(subkey 1, context "zen-disc", cluster secret).
SecretKey derive_discovery_key(const ClusterSecret& secret);

// A beacon for this node stamped with the current time and a fresh random nonce.
Beacon make_beacon(std::string name, BeaconRole role, uint16_t tcp_port, const PublicKey& key);
// Throws std::invalid_argument for a name that is empty, too long or has control characters,
// an unknown role, or port 0.
std::vector<uint8_t> encode_beacon(const Beacon& b, const SecretKey& discovery_key);

enum class BeaconStatus {
  ok,
  malformed,            // wrong magic, length, role, port or name bytes
  bad_mac,              // not made with this cluster's secret, or altered
  unsupported_version,  // authentic, but another protocol version
  stale,                // timestamp outside the skew window
  replayed,             // nonce already seen
};
const char* beacon_status_name(BeaconStatus s);

struct BeaconCheck {
  BeaconStatus status = BeaconStatus::malformed;
  Beacon beacon;  // filled when the MAC checked out (ok, unsupported_version)
};

// Format and MAC only (no clock, no state): safe on any bytes.
BeaconCheck verify_beacon(std::span<const uint8_t> bytes, const SecretKey& discovery_key);

// Freshness and replay. Nonces are remembered while their beacon could still pass the
// skew check; at most `capacity` are kept (the oldest go first). Not thread-safe.
class ReplayGuard {
 public:
  explicit ReplayGuard(std::chrono::milliseconds max_skew = std::chrono::seconds(30), size_t capacity = 4096);
  // ok (and the nonce is recorded), stale or replayed.
  BeaconStatus check(const Beacon& b, uint64_t now_ms);
  size_t remembered() const { return seen_.size(); }

 private:
  uint64_t skew_ms_;
  size_t capacity_;
  std::set<BeaconNonce> seen_;
  std::deque<std::pair<uint64_t, BeaconNonce>> order_;  // (forget after, nonce), in arrival order
};

// Unix time in milliseconds.
uint64_t unix_time_ms();

}  // namespace zen::transport
