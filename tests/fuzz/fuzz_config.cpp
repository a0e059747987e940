// Fuzzes node::parse_config on arbitrary text as TOML: a refusal must be a ConfigError
// with a message; anything else escaping, or a crash, is a finding. An accepted config
// also goes through validate() (ConfigError allowed) and describe().
#include <cstdlib>
#include <string_view>

#include "node/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zen::node;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const NodeConfig c = parse_config(text, "fuzz.toml", "/nonexistent-zen-fuzz");
    for (const auto& p : c.peers)
      if (p.str().empty()) std::abort();
    (void)describe(c);
    validate(c);
  } catch (const ConfigError& e) {
    if (std::string_view(e.what()).empty()) std::abort();
  }
  return 0;
}
