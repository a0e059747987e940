// Framing and the per-direction secretstreams after the handshake.
//
// Frame on the wire: u32 little-endian body length, then the body.
//   encrypted: body = crypto_secretstream_xchacha20poly1305 push(plaintext, ad = the 4 length bytes)
//   benchmark plaintext mode: body = plaintext
// The secretstream's implicit counter makes replayed, reordered or dropped
// frames fail to decrypt; an orderly close ends with a TAG_FINAL frame, so a
// stream that just stops is reported as truncated.
#pragma once

#include <sodium.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "transport/handshake.h"

namespace zen::transport {

inline constexpr size_t kFrameHeaderBytes = 4;
inline constexpr size_t kStreamHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;  // 24
inline constexpr size_t kFrameOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;            // 17
inline constexpr size_t kDefaultMaxFrameBytes = size_t{64} << 20;

// Reads a length prefix; returns false with `error` set when it is over the cap.
bool parse_frame_length(std::span<const std::byte, kFrameHeaderBytes> prefix, size_t max_body, size_t& body_len,
                        std::string& error);

class SecureChannel {
 public:
  // max_message_bytes caps the plaintext of one frame (the cap on the wire adds kFrameOverhead).
  SecureChannel(const SessionKeys& keys, size_t max_message_bytes);
  ~SecureChannel();
  SecureChannel(const SecureChannel&) = delete;
  SecureChannel& operator=(const SecureChannel&) = delete;

  // Our stream header, sent once right after the handshake.
  const std::array<uint8_t, kStreamHeaderBytes>& local_header() const { return local_header_; }
  // The peer's stream header; returns false on a bad header.
  bool accept_peer_header(std::span<const uint8_t> header);

  bool plaintext() const { return plaintext_; }
  size_t max_body_bytes() const { return max_message_ + (plaintext_ ? 0 : kFrameOverhead); }

  // Appends one whole frame (prefix + body) to out. `message` must not exceed the cap.
  // Not thread-safe: callers serialise seal() calls (order on the wire = order of calls).
  void seal(std::span<const std::byte> message, bool final, std::vector<std::byte>& out);
  // Plaintext mode only: message was encoded after kFrameHeaderBytes reserved bytes; fills in the prefix.
  void seal_in_place(std::vector<std::byte>& frame);

  struct Opened {
    bool ok = false;
    bool final = false;  // the peer's orderly last frame
    std::string error;
  };
  // Decrypts one frame body (prefix = its 4 length bytes) into message_out.
  Opened open(std::span<const std::byte, kFrameHeaderBytes> prefix, std::span<const std::byte> body,
              std::vector<std::byte>& message_out);

 private:
  crypto_secretstream_xchacha20poly1305_state push_{};
  crypto_secretstream_xchacha20poly1305_state pull_{};
  std::array<uint8_t, kStreamHeaderBytes> local_header_{};
  SecretKey recv_key_;
  bool peer_header_set_ = false;
  bool peer_finished_ = false;
  bool plaintext_ = false;
  size_t max_message_;
};

}  // namespace zen::transport
