// Tokenizers driven entirely by GGUF metadata (tokenizer.ggml.*), token for token what
// llama.cpp produces:
//   llama -> SentencePiece (SPM): score-driven merges of characters, byte fallback, leading space
//   gpt2  -> byte-level BPE: the regex pre-tokenizer that tokenizer.ggml.pre selects, rank merges
//   bert  -> WordPiece (WPM): lowercase, accent-stripping, greedy longest-prefix word pieces
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"

namespace zen::engine {

class Vocab;
class BpeMerger;
class Regex;

class Tokenizer {
 public:
  // Built only from GGUF metadata. Throws std::runtime_error for an unsupported
  // tokenizer.ggml.model or .pre value (the message lists the supported ones).
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& gguf);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // add_special: add BOS/EOS (and SEP for bert) as the metadata says; parse_special: recognise
  // the text of control tokens in `text` (user-defined tokens are always recognised).
  // Invalid UTF-8 never throws: SPM keeps each malformed byte as a byte token (so decoding
  // gives the input back), BPE and WPM see one U+FFFD per malformed byte.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The raw bytes of one token (a byte token gives its byte, possibly half a UTF-8 character).
  // Control and unknown tokens give their text only with render_special.
  std::string token_to_piece(int32_t id, bool render_special = true) const;
  // The pieces joined as llama.cpp's detokenizer does: the leading space that SPM encoding
  // added is dropped, and vocabularies with clean_spaces tidy " ," and " 's" style spaces.
  std::string decode(std::span<const int32_t> ids, bool render_special = false) const;

  int32_t n_vocab() const;
  int32_t bos() const;  // -1 if none
  int32_t eos() const;  // -1 if none
  bool is_eog(int32_t id) const;  // end of generation: eos, eot, <|im_end|>, <|eot_id|>, ...
  const std::vector<int32_t>& eog_ids() const;
  bool add_bos() const;
  bool add_eos() const;
  bool clean_spaces() const;  // decode() normalises spaces around punctuation (lossy)
  const std::string& model_type() const;  // "llama", "gpt2", "bert"
  const std::string& pre_type() const;    // tokenizer.ggml.pre ("" when absent)
  int32_t find_token(std::string_view text) const;  // exact token text -> id, -1 if none
  const std::string& token_text(int32_t id) const;   // the vocabulary entry as stored
  bool is_control(int32_t id) const;

 private:
  Tokenizer();
  void encode_spm(std::string_view text, std::vector<int32_t>& out) const;
  void encode_bpe(std::string_view text, std::vector<int32_t>& out) const;
  void encode_wpm(std::string_view text, std::vector<int32_t>& out) const;

  std::unique_ptr<Vocab> vocab_;
  std::unique_ptr<BpeMerger> bpe_;
  std::vector<Regex> pre_regexes_;
};

// Streams text out of generated ids: holds back the bytes of an incomplete UTF-8 character
// until it completes; bytes that can never complete are replaced with U+FFFD.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false)
      : tok_(tok), render_special_(render_special) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is held back (an unfinished character becomes U+FFFD)

 private:
  const Tokenizer& tok_;
  bool render_special_;
  std::string pending_;
};

}  // namespace zen::engine
