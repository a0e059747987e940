// SentencePiece tokenizer.model files: the ModelProto protobuf read by a small, bounds-checked
// reader of our own (no protobuf library), and written back (tests, tools).
//
// Fields used (sentencepiece_model.proto): ModelProto { 1: repeated SentencePiece pieces,
// 2: TrainerSpec trainer_spec, 3: NormalizerSpec normalizer_spec }; SentencePiece { 1: string
// piece, 2: float score, 3: Type type (1 normal, 2 unknown, 3 control, 4 user-defined,
// 5 unused, 6 byte; the same numbers as tokenizer.ggml.token_type) }; TrainerSpec { 3:
// model_type (1 unigram, 2 BPE, 3 word, 4 char), 35: byte_fallback, 40..43: unk/bos/eos/pad
// ids }; NormalizerSpec { 3: add_dummy_prefix, 4: remove_extra_whitespaces, 5:
// escape_whitespaces }. Every other field is skipped by wire type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace zen::engine {

class ProtobufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SpmPiece {
  std::string piece;
  float score = 0;
  int32_t type = 1;  // NORMAL
};

struct SpmModel {
  std::vector<SpmPiece> pieces;
  int32_t model_type = 1;  // UNIGRAM
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  bool byte_fallback = false;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

struct SpmLimits {
  size_t max_pieces = 1u << 22;
  size_t max_piece_bytes = 1u << 16;
};

// Throws ProtobufError naming the file, the field and the offset.
SpmModel parse_spm_model(std::span<const std::byte> bytes, std::string_view name, const SpmLimits& limits = {});
std::vector<std::byte> write_spm_model(const SpmModel& m);

}  // namespace zen::engine
