// Message <-> bytes. decode() is a pure function over untrusted bytes: it never
// throws, checks the protocol version first, and reads with Cap'n Proto
// traversal and nesting limits plus explicit caps on every variable field.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transport/messages.h"

namespace zen::transport {

struct DecodeLimits {
  size_t max_bytes = size_t{64} << 20;  // whole encoded message
  int nesting_limit = 16;               // our schema nests 3 deep
  size_t max_text = 4096;               // any Text field, bytes
  size_t max_rank = 8;                  // tensor shape length
  size_t max_stages = 4096;             // plan stages
};

struct DecodeResult {
  std::optional<Message> message;  // set on success
  std::string error;               // set on failure: why the bytes were refused
  bool ok() const { return message.has_value(); }
};

// Serialises one message (in an envelope with kProtocolVersion). Throws
// std::invalid_argument for a message that could not be decoded by a peer
// (tensor bytes not matching its shape, mismatched row lists).
std::vector<std::byte> encode(const Message& m);
// Same, written after `reserve_front` zero bytes in out (room for a frame header).
void encode_into(const Message& m, std::vector<std::byte>& out, size_t reserve_front);

// Never throws. Rejects: lengths that are not whole 8-byte words, a segment table
// that does not fit, a message that does not use exactly the given bytes, a
// protocol version other than kProtocolVersion, an unknown union member or enum
// value, traversal/nesting limit hits, fields over the caps, inconsistent shapes.
DecodeResult decode(std::span<const std::byte> bytes, const DecodeLimits& limits = {});

}  // namespace zen::transport
