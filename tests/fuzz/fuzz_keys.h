// Fixed key for the frame fuzz target, so the seed corpus can hold valid frames.
#pragma once

#include "transport/handshake.h"

namespace zen::transport::fuzz {

inline SessionKeys frame_keys(bool sender) {
  SessionKeys k;
  SecretKey fixed;
  fixed.bytes.fill(0x42);
  SecretKey other;
  other.bytes.fill(0x17);
  k.send_key = sender ? fixed : other;
  k.recv_key = sender ? other : fixed;
  return k;
}

inline constexpr size_t kFuzzMaxFrame = 1 << 20;

}  // namespace zen::transport::fuzz

namespace zen::transport::fuzz {

// Fixed cluster secret for the beacon fuzz target and its seed corpus.
inline ClusterSecret beacon_secret() {
  ClusterSecret s;
  s.key.bytes.fill(0x5A);
  return s;
}

}  // namespace zen::transport::fuzz
