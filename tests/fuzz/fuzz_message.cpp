// Fuzzes decode(): arbitrary bytes must give a message or an error, never a
// crash; a decoded message must encode and decode to the same bytes.
#include <cstdlib>

#include "transport/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zen::transport;
  DecodeLimits lim;
  lim.max_bytes = 1 << 20;
  DecodeResult r = decode(std::span(reinterpret_cast<const std::byte*>(data), size), lim);
  if (!r.ok()) {
    if (r.error.empty()) std::abort();  // a refusal must say why
    return 0;
  }
  auto once = encode(*r.message);
  DecodeResult again = decode(once, lim);
  if (!again.ok() || encode(*again.message) != once) std::abort();
  return 0;
}
