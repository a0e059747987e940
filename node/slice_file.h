// Model files on a node: content digests, and the smaller GGUF that holds one stage's slice
// (what a node without the model receives, verifies and keeps in its cache).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/gguf.h"

namespace zen::node {

using Digest = std::vector<uint8_t>;  // BLAKE2b-256
std::string hex(const Digest& d);

// Digest of a whole file (streamed). With a cache folder, the result is remembered by
// (device, inode, size, mtime) so a large model is hashed once.
Digest file_digest(const std::filesystem::path& path, const std::filesystem::path& cache_dir = {});

// Incremental digest (verifying a transfer as it arrives).
class DigestState {
 public:
  DigestState();
  void update(const void* data, size_t n);
  Digest final();

 private:
  alignas(64) unsigned char state_[384];
};

struct SliceSpecFile {
  int first_layer = 0, end_layer = 0;
  bool embed = false, head = false;
  bool operator==(const SliceSpecFile&) const = default;
};

// Writes a GGUF with every metadata key of `src` plus zen.slice.* keys, and only the tensors
// of the slice (blk.N for N in [first, end), token_embd when embed, output_norm/output (or
// the tied token_embd) when head). Written to path.tmp then renamed.
void write_slice_file(const engine::GgufModelFile& src, const SliceSpecFile& spec, const std::filesystem::path& out);

// Name of the cached slice of a model: "<model digest hex>-<first>-<end>-<e><h>.gguf".
std::string slice_file_name(const Digest& model_digest, const SliceSpecFile& spec);

}  // namespace zen::node
