#include "transport/channel.h"

#include <cstring>
#include <stdexcept>

namespace zen::transport {
namespace {

void put_u32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}

}  // namespace

bool parse_frame_length(std::span<const std::byte, kFrameHeaderBytes> prefix, size_t max_body, size_t& body_len,
                        std::string& error) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(prefix[static_cast<size_t>(i)]) << (8 * i);
  if (v > max_body) {
    error = "frame length " + std::to_string(v) + " exceeds the cap of " + std::to_string(max_body) + " bytes";
    return false;
  }
  body_len = v;
  return true;
}

SecureChannel::SecureChannel(const SessionKeys& keys, size_t max_message_bytes)
    : recv_key_(keys.recv_key), plaintext_(keys.plaintext), max_message_(max_message_bytes) {
  ensure_sodium();
  if (max_message_bytes > 0xffffffffu - kFrameOverhead) throw std::invalid_argument("frame cap must fit in 32 bits");
  crypto_secretstream_xchacha20poly1305_init_push(&push_, local_header_.data(), keys.send_key.bytes.data());
}

SecureChannel::~SecureChannel() {
  sodium_memzero(&push_, sizeof push_);
  sodium_memzero(&pull_, sizeof pull_);
}

bool SecureChannel::accept_peer_header(std::span<const uint8_t> header) {
  if (header.size() != kStreamHeaderBytes || peer_header_set_) return false;
  if (crypto_secretstream_xchacha20poly1305_init_pull(&pull_, header.data(), recv_key_.bytes.data()) != 0) return false;
  peer_header_set_ = true;
  return true;
}

void SecureChannel::seal(std::span<const std::byte> message, bool final, std::vector<std::byte>& out) {
  if (message.size() > max_message_) {
    throw std::length_error("message of " + std::to_string(message.size()) + " bytes exceeds the frame cap of " +
                            std::to_string(max_message_));
  }
  size_t body = message.size() + (plaintext_ ? 0 : kFrameOverhead);
  size_t at = out.size();
  out.resize(at + kFrameHeaderBytes + body);
  std::byte* prefix = out.data() + at;
  put_u32(prefix, static_cast<uint32_t>(body));
  if (plaintext_) {
    if (!message.empty()) std::memcpy(prefix + kFrameHeaderBytes, message.data(), message.size());
    return;
  }
  unsigned char tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
  crypto_secretstream_xchacha20poly1305_push(
      &push_, reinterpret_cast<unsigned char*>(prefix + kFrameHeaderBytes), nullptr,
      reinterpret_cast<const unsigned char*>(message.data()), message.size(),
      reinterpret_cast<const unsigned char*>(prefix), kFrameHeaderBytes, tag);
}

void SecureChannel::seal_in_place(std::vector<std::byte>& frame) {
  if (!plaintext_) throw std::logic_error("seal_in_place is only for benchmark plaintext mode");
  size_t body = frame.size() - kFrameHeaderBytes;
  if (body > max_message_) throw std::length_error("message exceeds the frame cap");
  put_u32(frame.data(), static_cast<uint32_t>(body));
}

SecureChannel::Opened SecureChannel::open(std::span<const std::byte, kFrameHeaderBytes> prefix,
                                          std::span<const std::byte> body, std::vector<std::byte>& message_out) {
  Opened r;
  if (peer_finished_) {
    r.error = "frame after the peer's final frame";
    return r;
  }
  if (body.size() > max_body_bytes()) {
    r.error = "frame of " + std::to_string(body.size()) + " bytes exceeds the cap";
    return r;
  }
  if (plaintext_) {
    message_out.assign(body.begin(), body.end());
    r.ok = true;
    return r;
  }
  if (!peer_header_set_) {
    r.error = "frame before the peer's stream header";
    return r;
  }
  if (body.size() < kFrameOverhead) {
    r.error = "frame of " + std::to_string(body.size()) + " bytes is shorter than its authentication tag";
    return r;
  }
  message_out.resize(body.size() - kFrameOverhead);
  unsigned char tag = 0;
  unsigned long long mlen = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(
          &pull_, reinterpret_cast<unsigned char*>(message_out.data()), &mlen, &tag,
          reinterpret_cast<const unsigned char*>(body.data()), body.size(),
          reinterpret_cast<const unsigned char*>(prefix.data()), kFrameHeaderBytes) != 0) {
    message_out.clear();
    r.error = "frame failed authentication (tampered, replayed, reordered or from another session)";
    return r;
  }
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
    peer_finished_ = true;
    r.final = true;
  } else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
    r.error = "frame carries an unexpected stream tag " + std::to_string(tag);
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace zen::transport
