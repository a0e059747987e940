// Rank-ordered BPE merges over symbols (internal to the tokenizer).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zen::engine {

class Vocab;

// Symbols are "atoms": a token id, or an id >= n_vocab for a merge operand that is not a
// token (malformed vocabularies only). A merge (left, right) maps to its rank and result.
class BpeMerger {
 public:
  BpeMerger(const Vocab& vocab, const std::vector<std::string>& merges);  // merges: "left right", rank order

  // Merges the characters of `word` (already byte-mapped where the vocabulary needs it) and
  // appends the resulting tokens; a piece that is no token falls back to byte tokens.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  int32_t atom(std::string_view text) const;  // -1 if unknown
  int32_t intern(std::string_view text);
  void emit_fallback(std::string_view piece, std::vector<int32_t>& out) const;

  const Vocab& vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::unordered_map<std::string, int32_t> extra_atoms_;  // non-token merge operands
};

}  // namespace zen::engine
