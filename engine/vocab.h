// A tokenizer vocabulary as the GGUF metadata describes it (tokenizer.ggml.*): token texts,
// scores and types, special token ids, and the flags that steer encoding and decoding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/gguf.h"

namespace zen::engine {

enum class VocabType { SPM, BPE, WPM };

// Token attributes (a bit set), from tokenizer.ggml.token_type plus a few fix-ups at load.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLStrip = 1u << 6,  // swallow whitespace to the left when matched in text
  kAttrRStrip = 1u << 7,  // swallow whitespace to the right
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
};

// One piece of input after special tokens are cut out: either raw text [begin, end) or a token.
struct Fragment {
  int32_t token = -1;  // -1: raw text
  size_t begin = 0, end = 0;
};

class Vocab {
 public:
  // Throws std::runtime_error for a missing/malformed key or an unsupported model/pre value.
  static std::unique_ptr<Vocab> from_gguf(const GgufFile& gguf);
  Vocab() = default;
  Vocab(const Vocab&) = delete;  // index_ holds views into tokens[].text
  Vocab& operator=(const Vocab&) = delete;

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  bool valid(int32_t id) const { return id >= 0 && id < n_tokens(); }
  int32_t find(std::string_view text) const;  // -1 when no token has this text
  int32_t byte_token(uint8_t b) const;        // the <0xXX> token (or the one-byte token), -1 if none
  int byte_of(int32_t id) const;              // value of a <0xXX> byte token, -1 otherwise
  bool is_eog(int32_t id) const;

  // Cuts the special tokens out of `text`, longest token text first. Control and unknown
  // tokens are recognised only with parse_special; user-defined tokens always are.
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;

  VocabType type = VocabType::SPM;
  std::string model;  // tokenizer.ggml.model: "llama", "gpt2", "bert"
  std::string pre;    // tokenizer.ggml.pre ("" when absent)
  std::vector<TokenData> tokens;
  size_t max_token_len = 0;  // bytes

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  bool add_bos = false, add_eos = false, add_sep = false;
  bool add_space_prefix = false;    // SPM: prepend a space to the text
  bool escape_whitespaces = false;  // ' ' <-> U+2581 before BPE (SentencePiece-style BPE)
  bool clean_spaces = false;        // decode: drop the space before ?!., and some contractions
  bool ignore_merges = false;       // BPE: a pre-token that is a whole token skips merging
  bool byte_encode = true;          // BPE: GPT-2 byte-level mapping of the input
  bool lowercase = true;            // WPM: lowercase the text (tokenizer.ggml.normalizer.lowercase)
  bool strip_accents = true;        // WPM: keep the first code point of the NFD form
  std::vector<std::string> pre_patterns;  // BPE pre-tokenizer regexes, applied in order
  std::vector<int32_t> special_cache;     // control/user-defined/unknown ids, longest text first
  std::vector<int32_t> eog_ids;           // sorted

 private:
  void index_tokens();
  void finish_special_tokens(const GgufFile& gguf);
  std::unordered_map<std::string_view, int32_t> index_;
};

}  // namespace zen::engine
