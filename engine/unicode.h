// Unicode helpers for the tokenizers: UTF-8 decoding that never throws (an invalid byte becomes
// U+FFFD), the GPT-2 byte <-> code point mapping of byte-level BPE, and per code point
// properties (general category class, lowercase, first code point of the NFD decomposition)
// used by the WordPiece normaliser.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zen::engine::unicode {

constexpr uint32_t kReplacement = 0xFFFD;

// Length of the UTF-8 sequence that `lead` starts (1 for ASCII, continuation and invalid bytes).
size_t utf8_len(uint8_t lead);
// Bytes of the character at s[pos]: its length when well-formed, else 1 (one malformed byte).
size_t utf8_char_len(std::string_view s, size_t pos);

// Decodes the code point at s[pos] and advances pos. A malformed sequence (bad lead or
// continuation byte, truncated, overlong, surrogate, > U+10FFFF) yields U+FFFD and advances by
// exactly one byte, so every invalid byte becomes one replacement character.
uint32_t decode_utf8(std::string_view s, size_t& pos);
void append_utf8(std::string& out, uint32_t cp);
std::string cpt_to_utf8(uint32_t cp);
std::vector<uint32_t> to_codepoints(std::string_view s);
// `s` with every invalid byte replaced by U+FFFD (valid UTF-8 is returned unchanged).
std::string sanitize_utf8(std::string_view s);
bool is_valid_utf8(std::string_view s);
// Number of bytes at the end of `s` that form the start of a UTF-8 sequence still missing
// continuation bytes (0 when `s` ends on a character boundary or in an invalid sequence).
size_t incomplete_utf8_tail(std::string_view s);

// Byte-level BPE (GPT-2): every byte is shown as a printable code point. Bytes 0x21-0x7E,
// 0xA1-0xAC and 0xAE-0xFF map to themselves, the other 68 to U+0100.. in byte order.
const std::string& byte_to_utf8(uint8_t b);
int utf8_cpt_to_byte(uint32_t cp);  // inverse; -1 for a code point outside the mapping

// Coarse general-category classes (from the Unicode tables that PCRE2 carries).
struct CptFlags {
  bool letter = false;       // L*
  bool number = false;       // N*
  bool punctuation = false;  // P*
  bool symbol = false;       // S*
  bool mark = false;         // M*
  bool separator = false;    // Z*
  bool control = false;      // Cc, Cf, Co (and surrogates)
  bool whitespace = false;   // Unicode White_Space property
};
CptFlags cpt_flags(uint32_t cp);
bool is_whitespace(uint32_t cp);
uint32_t to_lower(uint32_t cp);   // simple (one code point) lowercase mapping
uint32_t nfd_first(uint32_t cp);  // first code point of the canonical decomposition
// BERT's "CJK unified ideograph" ranges (each such character is its own word).
bool is_cjk_ideograph(uint32_t cp);

}  // namespace zen::engine::unicode
