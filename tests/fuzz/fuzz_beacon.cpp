// Fuzzes verify_beacon on arbitrary bytes under a fixed cluster secret: any status is
// fine, never a crash. An authentic beacon must re-encode to the same bytes, and must pass
// the replay guard once and then be refused as replayed.
#include <cstdlib>
#include <span>
#include <vector>

#include "tests/fuzz/fuzz_keys.h"
#include "transport/discovery_beacon.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zen::transport;
  static const SecretKey key = derive_discovery_key(fuzz::beacon_secret());
  const BeaconCheck c = verify_beacon(std::span(data, size), key);
  if (c.status != BeaconStatus::ok) return 0;
  const std::vector<uint8_t> again = encode_beacon(c.beacon, key);
  if (again != std::vector<uint8_t>(data, data + size)) std::abort();
  ReplayGuard guard;
  const uint64_t now = c.beacon.timestamp_ms;
  if (guard.check(c.beacon, now) != BeaconStatus::ok) std::abort();
  if (guard.check(c.beacon, now) != BeaconStatus::replayed) std::abort();
  return 0;
}
