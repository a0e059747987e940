// Fuzzes the receive path after the handshake: input = the peer's 24-byte
// stream header, then length-prefixed frames, as a socket would deliver them.
#include "tests/fuzz/fuzz_keys.h"
#include "transport/channel.h"
#include "transport/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zen::transport;
  if (size < kStreamHeaderBytes) return 0;
  SecureChannel ch(fuzz::frame_keys(false), fuzz::kFuzzMaxFrame);
  if (!ch.accept_peer_header({data, kStreamHeaderBytes})) return 0;
  std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data) + kStreamHeaderBytes,
                                  size - kStreamHeaderBytes);
  std::vector<std::byte> plain;
  DecodeLimits lim;
  lim.max_bytes = fuzz::kFuzzMaxFrame;
  while (rest.size() >= kFrameHeaderBytes) {
    std::span<const std::byte, kFrameHeaderBytes> prefix(rest.data(), kFrameHeaderBytes);
    size_t len = 0;
    std::string err;
    if (!parse_frame_length(prefix, ch.max_body_bytes(), len, err)) return 0;
    if (len > rest.size() - kFrameHeaderBytes) return 0;  // truncated
    auto opened = ch.open(prefix, rest.subspan(kFrameHeaderBytes, len), plain);
    if (!opened.ok) return 0;
    if (!decode(plain, lim).ok()) return 0;
    if (opened.final) return 0;
    rest = rest.subspan(kFrameHeaderBytes + len);
  }
  return 0;
}
