// Fuzzes SafetensorsFile::parse (the u64 length + JSON header) on arbitrary bytes: a
// refusal is a SafetensorsError; an accepted header must describe tensors that lie in the
// data section, have the byte count their dtype and shape say, and do not overlap.
#include <cstdlib>
#include <span>

#include "engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zen::engine;
  SafetensorsFile f;
  try {
    f = SafetensorsFile::parse(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.safetensors");
  } catch (const SafetensorsError&) {
    return 0;
  }
  if (f.data_offset > size) std::abort();
  const size_t data_bytes = size - f.data_offset;
  size_t prev_end = 0;
  for (const auto& t : f.tensors) {
    if (t.begin > t.end || t.end > data_bytes || t.begin < prev_end) std::abort();
    if (static_cast<uint64_t>(t.n_elements()) * st_dtype_size(t.dtype) != t.end - t.begin) std::abort();
    if (f.find(t.name) != &t) std::abort();
    prev_end = t.end;
  }
  return 0;
}
