#include "transport/discovery_beacon.h"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

namespace zen::transport {

namespace {

constexpr uint8_t kMagic[4] = {'Z', 'E', 'N', 'B'};
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "zen-disc";
constexpr uint64_t kKdfSubkeyId = 1;
static_assert(crypto_auth_BYTES == kBeaconMacBytes);
static_assert(crypto_auth_KEYBYTES == 32 && crypto_kdf_KEYBYTES == 32);

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint64_t get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

bool valid_role(uint8_t r) { return r == 1 || r == 2; }

// Printable bytes only (UTF-8 continuation bytes allowed): names end up in log lines.
bool valid_name(const uint8_t* p, size_t n) {
  if (n == 0 || n > kBeaconMaxName) return false;
  for (size_t i = 0; i < n; ++i)
    if (p[i] < 0x20 || p[i] == 0x7f) return false;
  return true;
}

}  // namespace

const char* beacon_role_name(BeaconRole r) {
  switch (r) {
    case BeaconRole::coordinator: return "coordinator";
    case BeaconRole::worker: return "worker";
  }
  return "unknown";
}

const char* beacon_status_name(BeaconStatus s) {
  switch (s) {
    case BeaconStatus::ok: return "ok";
    case BeaconStatus::malformed: return "malformed";
    case BeaconStatus::bad_mac: return "bad MAC (another cluster secret, or altered)";
    case BeaconStatus::unsupported_version: return "unsupported protocol version";
    case BeaconStatus::stale: return "stale timestamp";
    case BeaconStatus::replayed: return "replayed nonce";
  }
  return "unknown";
}

uint64_t unix_time_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

SecretKey derive_discovery_key(const ClusterSecret& secret) {
  ensure_sodium();
  SecretKey k;
  if (crypto_kdf_derive_from_key(k.bytes.data(), k.bytes.size(), kKdfSubkeyId, kKdfContext,
                                 secret.key.bytes.data()) != 0)
    throw std::runtime_error("cannot derive the discovery key");
  return k;
}

Beacon make_beacon(std::string name, BeaconRole role, uint16_t tcp_port, const PublicKey& key) {
  ensure_sodium();
  Beacon b;
  b.role = role;
  b.name = std::move(name);
  b.tcp_port = tcp_port;
  b.public_key = key;
  b.timestamp_ms = unix_time_ms();
  randombytes_buf(b.nonce.data(), b.nonce.size());
  return b;
}

std::vector<uint8_t> encode_beacon(const Beacon& b, const SecretKey& key) {
  ensure_sodium();
  const auto* name = reinterpret_cast<const uint8_t*>(b.name.data());
  if (!valid_name(name, b.name.size()))
    throw std::invalid_argument("beacon name must be 1 to 64 printable bytes");
  if (!valid_role(static_cast<uint8_t>(b.role))) throw std::invalid_argument("beacon role unknown");
  if (b.tcp_port == 0) throw std::invalid_argument("beacon TCP port is 0");
  std::vector<uint8_t> out(kBeaconHeaderBytes + b.name.size() + kBeaconMacBytes);
  uint8_t* p = out.data();
  std::memcpy(p, kMagic, 4);
  put16(p + 4, b.version);
  p[6] = static_cast<uint8_t>(b.role);
  p[7] = static_cast<uint8_t>(b.name.size());
  put16(p + 8, b.tcp_port);
  put64(p + 10, b.timestamp_ms);
  std::memcpy(p + 18, b.nonce.data(), b.nonce.size());
  std::memcpy(p + 34, b.public_key.data(), b.public_key.size());
  std::memcpy(p + kBeaconHeaderBytes, name, b.name.size());
  const size_t body = kBeaconHeaderBytes + b.name.size();
  crypto_auth(p + body, p, body, key.bytes.data());
  return out;
}

BeaconCheck verify_beacon(std::span<const uint8_t> bytes, const SecretKey& key) {
  ensure_sodium();
  BeaconCheck r;
  if (bytes.size() < kBeaconHeaderBytes + 1 + kBeaconMacBytes || bytes.size() > kBeaconMaxBytes) return r;
  const uint8_t* p = bytes.data();
  if (std::memcmp(p, kMagic, 4) != 0) return r;
  const size_t name_len = p[7];
  const size_t body = kBeaconHeaderBytes + name_len;
  if (bytes.size() != body + kBeaconMacBytes) return r;
  // The MAC comes before any other field is believed.
  if (crypto_auth_verify(p + body, p, body, key.bytes.data()) != 0) {
    r.status = BeaconStatus::bad_mac;
    return r;
  }
  if (!valid_role(p[6]) || get16(p + 8) == 0 || !valid_name(p + kBeaconHeaderBytes, name_len)) return r;
  Beacon& b = r.beacon;
  b.version = get16(p + 4);
  b.role = static_cast<BeaconRole>(p[6]);
  b.tcp_port = get16(p + 8);
  b.timestamp_ms = get64(p + 10);
  std::memcpy(b.nonce.data(), p + 18, b.nonce.size());
  std::memcpy(b.public_key.data(), p + 34, b.public_key.size());
  b.name.assign(reinterpret_cast<const char*>(p + kBeaconHeaderBytes), name_len);
  r.status = b.version == kProtocolVersion ? BeaconStatus::ok : BeaconStatus::unsupported_version;
  return r;
}

ReplayGuard::ReplayGuard(std::chrono::milliseconds max_skew, size_t capacity)
    : skew_ms_(static_cast<uint64_t>(max_skew.count() < 0 ? 0 : max_skew.count())), capacity_(capacity < 1 ? 1 : capacity) {}

BeaconStatus ReplayGuard::check(const Beacon& b, uint64_t now_ms) {
  // Forget nonces whose beacons would now fail the skew check anyway.
  while (!order_.empty() && order_.front().first < now_ms) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  const uint64_t diff = b.timestamp_ms > now_ms ? b.timestamp_ms - now_ms : now_ms - b.timestamp_ms;
  if (diff > skew_ms_) return BeaconStatus::stale;
  if (seen_.count(b.nonce) != 0) return BeaconStatus::replayed;
  while (seen_.size() >= capacity_) {
    seen_.erase(order_.front().second);
    order_.pop_front();
  }
  seen_.insert(b.nonce);
  order_.emplace_back(b.timestamp_ms + skew_ms_, b.nonce);
  return BeaconStatus::ok;
}

}  // namespace zen::transport
