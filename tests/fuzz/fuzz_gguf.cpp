// Fuzzes GgufFile::parse on arbitrary bytes; a file that parses goes on to the typed
// getters, Hparams::from_gguf and Tokenizer::from_gguf (and a short encode/decode when a
// tokenizer comes out). Exceptions are fine; crashes, UB and leaks are findings.
#include <cstdlib>
#include <exception>
#include <span>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zen::engine;
  const auto bytes = std::span(reinterpret_cast<const std::byte*>(data), size);
  GgufFile f;
  try {
    f = GgufFile::parse(bytes, "fuzz.gguf");
  } catch (const GgufError& e) {
    return 0;
  }
  for (const auto& t : f.tensors) {  // every tensor must lie inside the input
    if (f.data_offset > size || t.offset > size - f.data_offset) std::abort();
    if (t.bytes > size - f.data_offset - t.offset) std::abort();
  }
  for (const auto& [key, v] : f.kv) {
    if (f.find(key) == nullptr) std::abort();
    try {
      (void)f.get_int(key);
    } catch (const GgufError&) {
    }
    try {
      (void)f.get_float(key);
    } catch (const GgufError&) {
    }
    try {
      (void)f.get_string(key);
    } catch (const GgufError&) {
    }
  }
  try {
    (void)Hparams::from_gguf(f);
  } catch (const std::exception&) {
  }
  try {
    auto tok = Tokenizer::from_gguf(f);
    const auto ids = tok->encode("Hello world, <s> 123 \xC3\xA9\xE2\x96\x81", true, true);
    for (int32_t id : ids)
      if (id < 0 || id >= tok->n_vocab()) std::abort();
    (void)tok->decode(ids, true);
  } catch (const std::exception&) {
  }
  return 0;
}
