// WordPiece (tokenizer.ggml.model = bert). The GGUF vocabulary marks word-initial pieces with
// a leading U+2581 ("phantom space") instead of BERT's "##" on the continuations, so a word
// is looked up as "\u2581word" and split greedily into the longest known prefixes.
#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "engine/vocab.h"

namespace zen::engine {

namespace {

// BERT's basic tokenizer: strip accents (first code point of the NFD form) and lowercase
// (both on unless the metadata turns them off), drop
// control characters, split on whitespace, and make every punctuation mark, ASCII symbol and
// CJK ideograph a word of its own.
std::vector<std::string> wpm_words(std::string_view text, bool lowercase, bool strip_accents) {
  std::vector<std::string> words(1);
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = unicode::decode_utf8(text, pos);
    if (strip_accents) cp = unicode::nfd_first(cp);
    const unicode::CptFlags f = unicode::cpt_flags(cp);
    if (f.whitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cp == 0 || cp == unicode::kReplacement || f.control) continue;
    const std::string s = unicode::cpt_to_utf8(lowercase ? unicode::to_lower(cp) : cp);
    if (f.punctuation || (cp < 0x7F && f.symbol) || unicode::is_cjk_ideograph(cp)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void Tokenizer::encode_wpm(std::string_view text, std::vector<int32_t>& out) const {
  const Vocab& v = *vocab_;
  for (const std::string& w : wpm_words(text, v.lowercase, v.strip_accents)) {
    const std::string word = "\xE2\x96\x81" + w;
    const size_t n = word.size();
    const size_t start = out.size();
    for (size_t i = 0; i < n;) {
      bool matched = false;
      for (size_t j = std::min(n, i + v.max_token_len + 1); j > i; --j) {
        const int32_t id = v.find(std::string_view(word).substr(i, j - i));
        if (id >= 0) {
          out.push_back(id);
          i = j;
          matched = true;
          break;
        }
      }
      if (!matched) {  // the word cannot be covered: it becomes one unknown token
        out.resize(start);
        break;
      }
    }
    if (out.size() == start && v.unk >= 0) out.push_back(v.unk);
  }
}

}  // namespace zen::engine
