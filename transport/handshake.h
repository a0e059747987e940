// The connection handshake as a pure state machine over byte spans (no
// sockets): ephemeral X25519 for forward secrecy, the cluster secret mixed into
// every key, static keys proven by DH, optional allow list. See docs/PROTOCOL.md.
//
//   msg1 I->R: header(8) | e_i(32) | tag(16)                      = 56 bytes
//   msg2 R->I: header(8) | e_r(32) | enc(s_r)(48) | tag(16)       = 104 bytes
//   msg3 I->R: enc(s_i)(48) | tag(16)                             = 64 bytes
//   reject R->I: header(8) with the reject flag (protocol version mismatch)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include "transport/keys.h"

namespace zen::transport {

// Every refusal is one of these, with a message that says why.
struct HandshakeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr size_t kHandshakeHeaderBytes = 8;
inline constexpr size_t kMsg1Bytes = 56;
inline constexpr size_t kMsg2Bytes = 104;
inline constexpr size_t kMsg3Bytes = 64;

struct HandshakeHeader {
  uint16_t version = 0;
  bool plaintext = false;  // benchmark-only unencrypted frames after the handshake
  bool reject = false;     // responder refuses: it speaks `version`
};
// Throws HandshakeError on a bad magic or unknown flag bits. Accepts any version.
HandshakeHeader parse_handshake_header(std::span<const uint8_t> bytes);
std::array<uint8_t, kHandshakeHeaderBytes> make_handshake_header(const HandshakeHeader& h);

struct HandshakeConfig {
  KeyPair identity;
  ClusterSecret cluster_secret;
  std::vector<PublicKey> allow_list;       // empty: any peer holding the cluster secret
  std::optional<PublicKey> expected_peer;  // initiator: pin the responder's key
  bool plaintext_for_benchmark = false;    // both sides must agree; never in production
  uint16_t protocol_version = kProtocolVersion;  // tests set an old one to play an old peer
};

// Keys for the two secretstreams that follow, one per direction.
struct SessionKeys {
  SecretKey send_key;
  SecretKey recv_key;
  PublicKey peer_static{};
  bool plaintext = false;
};

class Handshake {
 public:
  enum class Role { initiator, responder };
  Handshake(Role role, HandshakeConfig config);
  ~Handshake();
  Handshake(const Handshake&) = delete;
  Handshake& operator=(const Handshake&) = delete;

  // Initiator: write_msg1, read_msg2, write_msg3, keys().
  std::vector<uint8_t> write_msg1();
  void read_msg2(std::span<const uint8_t> msg);
  std::vector<uint8_t> write_msg3();

  // Responder: read_msg1 (throws with reject_bytes() set on a version
  // mismatch, so the caller can tell the peer before closing), write_msg2, read_msg3, keys().
  void read_msg1(std::span<const uint8_t> msg);
  std::vector<uint8_t> write_msg2();
  void read_msg3(std::span<const uint8_t> msg);
  const std::vector<uint8_t>& reject_bytes() const { return reject_; }

  // After the last message; throws if the handshake is not complete.
  SessionKeys keys() const;

 private:
  struct Symmetric;
  void expect_step(int step, const char* what) const;
  void check_allowed(const PublicKey& peer, const char* role) const;

  Role role_;
  HandshakeConfig cfg_;
  std::unique_ptr<Symmetric> sym_;  // chaining key, transcript hash, current AEAD key
  KeyPair ephemeral_;
  PublicKey peer_ephemeral_{};
  PublicKey peer_static_{};
  bool plaintext_ = false;
  int step_ = 0;
  std::vector<uint8_t> reject_;
};

}  // namespace zen::transport
