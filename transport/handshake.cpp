#include "transport/handshake.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace zen::transport {
namespace {

constexpr uint8_t kMagic[4] = {'Z', 'E', 'N', 'H'};
constexpr uint16_t kFlagPlaintext = 1;
constexpr uint16_t kFlagReject = 2;
constexpr char kProtocolName[] = "zen handshake v1: X25519 BLAKE2b XChaCha20-Poly1305 cluster-psk";
constexpr size_t kTag = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kTag == 16);

using Bytes32 = std::array<uint8_t, 32>;

Bytes32 hash(std::span<const uint8_t> a, std::span<const uint8_t> b = {}, std::span<const uint8_t> key = {}) {
  Bytes32 out;
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.empty() ? nullptr : key.data(), key.size(), out.size());
  crypto_generichash_update(&st, a.data(), a.size());
  crypto_generichash_update(&st, b.data(), b.size());
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof st);
  return out;
}

Bytes32 dh(const SecretKey& sk, const PublicKey& pk) {
  Bytes32 out;
  // libsodium returns -1 when the result is all zero (a low-order peer point).
  if (crypto_scalarmult(out.data(), sk.bytes.data(), pk.data()) != 0) {
    throw HandshakeError("handshake: peer sent a degenerate (low-order) public key");
  }
  return out;
}

}  // namespace

// Noise-style symmetric state: ck (chaining key), h (transcript hash), k + n (AEAD key, nonce).
struct Handshake::Symmetric {
  Bytes32 ck{}, h{}, k{};
  uint64_t n = 0;
  bool has_key = false;

  Symmetric() {
    h = hash({reinterpret_cast<const uint8_t*>(kProtocolName), sizeof kProtocolName - 1});
    ck = h;
  }
  ~Symmetric() {
    sodium_memzero(ck.data(), ck.size());
    sodium_memzero(k.data(), k.size());
  }
  void mix_hash(std::span<const uint8_t> data) { h = hash(h, data); }
  // HKDF-shaped with keyed BLAKE2b: temp = H_ck(ikm); ck = H_temp(1); k = H_temp(ck || 2).
  void mix_key(std::span<const uint8_t> ikm) {
    Bytes32 temp = hash(ikm, {}, ck);
    const uint8_t one = 1, two = 2;
    ck = hash({&one, 1}, {}, temp);
    k = hash(ck, {&two, 1}, temp);
    n = 0;
    has_key = true;
    sodium_memzero(temp.data(), temp.size());
  }
  std::array<uint8_t, 24> nonce() const {
    std::array<uint8_t, 24> nb{};
    for (int i = 0; i < 8; ++i) nb[static_cast<size_t>(i)] = static_cast<uint8_t>(n >> (8 * i));
    return nb;
  }
  void encrypt_and_hash(std::span<const uint8_t> pt, std::vector<uint8_t>& out) {
    size_t at = out.size();
    out.resize(at + pt.size() + kTag);
    auto nb = nonce();
    unsigned long long clen = 0;
    const uint8_t empty = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + at, &clen, pt.empty() ? &empty : pt.data(), pt.size(), h.data(), h.size(),
                                               nullptr, nb.data(), k.data());
    ++n;
    mix_hash({out.data() + at, static_cast<size_t>(clen)});
  }
  // Returns false when the tag does not verify.
  // pt may be null for a tag-only message (empty plaintext).
  bool decrypt_and_hash(std::span<const uint8_t> ct, uint8_t* pt) {
    uint8_t sink[1];
    if (pt == nullptr) pt = sink;
    auto nb = nonce();
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &plen, nullptr, ct.data(), ct.size(), h.data(), h.size(),
                                                   nb.data(), k.data()) != 0) {
      return false;
    }
    ++n;
    mix_hash(ct);
    return true;
  }
  // Final split: two independent keys, one per direction.
  std::pair<Bytes32, Bytes32> split() const {
    const uint8_t one = 1, two = 2;
    Bytes32 temp = hash({}, {}, ck);
    Bytes32 k1 = hash({&one, 1}, {}, temp);
    Bytes32 k2 = hash(k1, {&two, 1}, temp);
    return {k1, k2};
  }
};

HandshakeHeader parse_handshake_header(std::span<const uint8_t> b) {
  if (b.size() < kHandshakeHeaderBytes) throw HandshakeError("handshake: header truncated");
  if (std::memcmp(b.data(), kMagic, 4) != 0) {
    throw HandshakeError("handshake: peer is not speaking the zen protocol (bad magic bytes)");
  }
  HandshakeHeader h;
  h.version = static_cast<uint16_t>(b[4] | (b[5] << 8));
  uint16_t flags = static_cast<uint16_t>(b[6] | (b[7] << 8));
  if (flags & ~(kFlagPlaintext | kFlagReject)) {
    throw HandshakeError("handshake: unknown header flags 0x" + std::to_string(flags));
  }
  h.plaintext = flags & kFlagPlaintext;
  h.reject = flags & kFlagReject;
  return h;
}

std::array<uint8_t, kHandshakeHeaderBytes> make_handshake_header(const HandshakeHeader& h) {
  uint16_t flags = static_cast<uint16_t>((h.plaintext ? kFlagPlaintext : 0) | (h.reject ? kFlagReject : 0));
  return {kMagic[0], kMagic[1], kMagic[2], kMagic[3], static_cast<uint8_t>(h.version), static_cast<uint8_t>(h.version >> 8),
          static_cast<uint8_t>(flags), static_cast<uint8_t>(flags >> 8)};
}

Handshake::Handshake(Role role, HandshakeConfig config)
    : role_(role), cfg_(std::move(config)), sym_(std::make_unique<Symmetric>()), ephemeral_(generate_keypair()) {
  // The cluster secret goes in first: every later key depends on it, so a peer
  // without it cannot produce or read a single authenticated byte.
  sym_->mix_key(cfg_.cluster_secret.key.bytes);
}

Handshake::~Handshake() = default;

void Handshake::expect_step(int step, const char* what) const {
  if (step_ != step) throw HandshakeError(std::string("handshake: ") + what + " called out of order");
}

void Handshake::check_allowed(const PublicKey& peer, const char* role) const {
  if (cfg_.expected_peer && *cfg_.expected_peer != peer) {
    throw HandshakeError(std::string("handshake: ") + role + " key " + format_public_key(peer) +
                         " is not the expected key " + format_public_key(*cfg_.expected_peer));
  }
  if (!cfg_.allow_list.empty() && std::find(cfg_.allow_list.begin(), cfg_.allow_list.end(), peer) == cfg_.allow_list.end()) {
    throw HandshakeError(std::string("handshake: ") + role + " key " + format_public_key(peer) + " is not on the allow list");
  }
}

std::vector<uint8_t> Handshake::write_msg1() {
  if (role_ != Role::initiator) throw HandshakeError("handshake: write_msg1 on a responder");
  expect_step(0, "write_msg1");
  auto hdr = make_handshake_header({cfg_.protocol_version, cfg_.plaintext_for_benchmark, false});
  std::vector<uint8_t> out(hdr.begin(), hdr.end());
  sym_->mix_hash(hdr);
  out.insert(out.end(), ephemeral_.public_key.begin(), ephemeral_.public_key.end());
  sym_->mix_hash(ephemeral_.public_key);
  sym_->mix_key(ephemeral_.public_key);
  sym_->encrypt_and_hash({}, out);  // proves the cluster secret before the responder says anything
  step_ = 1;
  return out;
}

void Handshake::read_msg1(std::span<const uint8_t> msg) {
  if (role_ != Role::responder) throw HandshakeError("handshake: read_msg1 on an initiator");
  expect_step(0, "read_msg1");
  HandshakeHeader hdr = parse_handshake_header(msg);
  if (hdr.version != cfg_.protocol_version || hdr.reject) {
    auto r = make_handshake_header({cfg_.protocol_version, false, true});
    reject_.assign(r.begin(), r.end());
    throw HandshakeError("handshake: peer speaks protocol version " + std::to_string(hdr.version) +
                         ", this node speaks version " + std::to_string(cfg_.protocol_version));
  }
  if (msg.size() != kMsg1Bytes) throw HandshakeError("handshake: message 1 has the wrong length");
  if (hdr.plaintext != cfg_.plaintext_for_benchmark) {
    throw HandshakeError(hdr.plaintext ? "handshake: peer asked for unencrypted frames, refused"
                                       : "handshake: this node is in benchmark plaintext mode, peer is not");
  }
  plaintext_ = hdr.plaintext;
  sym_->mix_hash(msg.first(kHandshakeHeaderBytes));
  std::memcpy(peer_ephemeral_.data(), msg.data() + 8, 32);
  sym_->mix_hash(peer_ephemeral_);
  sym_->mix_key(peer_ephemeral_);
  if (!sym_->decrypt_and_hash(msg.subspan(40, kTag), nullptr)) {
    throw HandshakeError("handshake: peer does not hold this cluster's secret (message 1 failed authentication)");
  }
  step_ = 1;
}

std::vector<uint8_t> Handshake::write_msg2() {
  if (role_ != Role::responder) throw HandshakeError("handshake: write_msg2 on an initiator");
  expect_step(1, "write_msg2");
  auto hdr = make_handshake_header({cfg_.protocol_version, plaintext_, false});
  std::vector<uint8_t> out(hdr.begin(), hdr.end());
  sym_->mix_hash(hdr);
  out.insert(out.end(), ephemeral_.public_key.begin(), ephemeral_.public_key.end());
  sym_->mix_hash(ephemeral_.public_key);
  sym_->mix_key(ephemeral_.public_key);
  Bytes32 ee = dh(ephemeral_.secret_key, peer_ephemeral_);
  sym_->mix_key(ee);
  sym_->encrypt_and_hash(cfg_.identity.public_key, out);
  Bytes32 es = dh(cfg_.identity.secret_key, peer_ephemeral_);
  sym_->mix_key(es);
  sym_->encrypt_and_hash({}, out);  // only the holder of our static secret can make this tag
  sodium_memzero(ee.data(), 32);
  sodium_memzero(es.data(), 32);
  step_ = 2;
  return out;
}

void Handshake::read_msg2(std::span<const uint8_t> msg) {
  if (role_ != Role::initiator) throw HandshakeError("handshake: read_msg2 on a responder");
  expect_step(1, "read_msg2");
  HandshakeHeader hdr = parse_handshake_header(msg);
  if (hdr.reject || hdr.version != cfg_.protocol_version) {
    throw HandshakeError("handshake: responder speaks protocol version " + std::to_string(hdr.version) +
                         ", this node speaks version " + std::to_string(cfg_.protocol_version));
  }
  if (msg.size() != kMsg2Bytes) throw HandshakeError("handshake: message 2 has the wrong length");
  if (hdr.plaintext != cfg_.plaintext_for_benchmark) throw HandshakeError("handshake: plaintext mode mismatch");
  sym_->mix_hash(msg.first(kHandshakeHeaderBytes));
  std::memcpy(peer_ephemeral_.data(), msg.data() + 8, 32);
  sym_->mix_hash(peer_ephemeral_);
  sym_->mix_key(peer_ephemeral_);
  Bytes32 ee = dh(ephemeral_.secret_key, peer_ephemeral_);
  sym_->mix_key(ee);
  if (!sym_->decrypt_and_hash(msg.subspan(40, 32 + kTag), peer_static_.data())) {
    throw HandshakeError("handshake: cannot authenticate the responder (wrong cluster secret?)");
  }
  Bytes32 es = dh(ephemeral_.secret_key, peer_static_);
  sym_->mix_key(es);
  if (!sym_->decrypt_and_hash(msg.subspan(88, kTag), nullptr)) {
    throw HandshakeError("handshake: responder did not prove possession of its static key");
  }
  sodium_memzero(ee.data(), 32);
  sodium_memzero(es.data(), 32);
  check_allowed(peer_static_, "responder");
  plaintext_ = hdr.plaintext;
  step_ = 2;
}

std::vector<uint8_t> Handshake::write_msg3() {
  if (role_ != Role::initiator) throw HandshakeError("handshake: write_msg3 on a responder");
  expect_step(2, "write_msg3");
  std::vector<uint8_t> out;
  sym_->encrypt_and_hash(cfg_.identity.public_key, out);
  Bytes32 se = dh(cfg_.identity.secret_key, peer_ephemeral_);
  sym_->mix_key(se);
  sym_->encrypt_and_hash({}, out);
  sodium_memzero(se.data(), 32);
  step_ = 3;
  return out;
}

void Handshake::read_msg3(std::span<const uint8_t> msg) {
  if (role_ != Role::responder) throw HandshakeError("handshake: read_msg3 on an initiator");
  expect_step(2, "read_msg3");
  if (msg.size() != kMsg3Bytes) throw HandshakeError("handshake: message 3 has the wrong length");
  if (!sym_->decrypt_and_hash(msg.first(32 + kTag), peer_static_.data())) {
    throw HandshakeError("handshake: cannot authenticate the initiator's static key (message 3 tampered?)");
  }
  Bytes32 se = dh(ephemeral_.secret_key, peer_static_);
  sym_->mix_key(se);
  sodium_memzero(se.data(), 32);
  if (!sym_->decrypt_and_hash(msg.subspan(32 + kTag, kTag), nullptr)) {
    throw HandshakeError("handshake: initiator did not prove possession of its static key");
  }
  check_allowed(peer_static_, "initiator");
  step_ = 3;
}

SessionKeys Handshake::keys() const {
  if (step_ != 3) throw HandshakeError("handshake: keys() before the handshake completed");
  auto [i2r, r2i] = sym_->split();
  SessionKeys s;
  s.send_key.bytes = role_ == Role::initiator ? i2r : r2i;
  s.recv_key.bytes = role_ == Role::initiator ? r2i : i2r;
  s.peer_static = peer_static_;
  s.plaintext = plaintext_;
  sodium_memzero(i2r.data(), 32);
  sodium_memzero(r2i.data(), 32);
  return s;
}

}  // namespace zen::transport
