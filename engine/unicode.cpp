#include "engine/unicode.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <unordered_map>

#include "engine/unicode_regex.h"

namespace zen::engine::unicode {

namespace detail {
struct NfdRange {
  uint32_t first, last, nfd;
};
extern const NfdRange kNfdRanges[];
extern const size_t kNfdRangeCount;
}  // namespace detail

size_t utf8_len(uint8_t lead) {
  if (lead < 0xC0) return 1;  // ASCII, or a stray continuation byte
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF8) return 4;
  return 1;
}

size_t utf8_char_len(std::string_view s, size_t pos) {
  size_t end = pos;
  decode_utf8(s, end);  // a malformed sequence advances by exactly one byte
  return end - pos;
}

uint32_t decode_utf8(std::string_view s, size_t& pos) {
  const auto c0 = static_cast<uint8_t>(s[pos]);
  if (c0 < 0x80) {
    ++pos;
    return c0;
  }
  size_t n = 0;
  uint32_t cp = 0, min = 0;
  if ((c0 & 0xE0) == 0xC0) { n = 1; cp = c0 & 0x1F; min = 0x80; }
  else if ((c0 & 0xF0) == 0xE0) { n = 2; cp = c0 & 0x0F; min = 0x800; }
  else if ((c0 & 0xF8) == 0xF0) { n = 3; cp = c0 & 0x07; min = 0x10000; }
  else { ++pos; return kReplacement; }
  if (pos + n >= s.size()) { ++pos; return kReplacement; }  // truncated sequence
  for (size_t i = 1; i <= n; ++i) {
    const auto c = static_cast<uint8_t>(s[pos + i]);
    if ((c & 0xC0) != 0x80) { ++pos; return kReplacement; }
    cp = (cp << 6) | (c & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) { ++pos; return kReplacement; }
  pos += n + 1;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string cpt_to_utf8(uint32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

std::vector<uint32_t> to_codepoints(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out.push_back(decode_utf8(s, pos));
  return out;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t at = pos;
    if (decode_utf8(s, pos) == kReplacement && !(pos - at == 3 && s.substr(at, 3) == "\xEF\xBF\xBD")) return false;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t pos = 0; pos < s.size();) append_utf8(out, decode_utf8(s, pos));
  return out;
}

size_t incomplete_utf8_tail(std::string_view s) {
  // Walk back over at most 3 continuation bytes to the lead byte of the last sequence.
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    if (c < 0xC0 || c >= 0xF8) return 0;
    const size_t need = utf8_len(c);
    return back < need ? back : 0;
  }
  return 0;
}

// ---- byte-level BPE mapping -------------------------------------------------------------

namespace {

struct ByteMap {
  std::array<std::string, 256> to_utf8;
  std::unordered_map<uint32_t, uint8_t> from_cpt;
  ByteMap() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      to_utf8[b] = cpt_to_utf8(cp);
      from_cpt[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& byte_to_utf8(uint8_t b) { return byte_map().to_utf8[b]; }

int utf8_cpt_to_byte(uint32_t cp) {
  const auto& m = byte_map().from_cpt;
  auto it = m.find(cp);
  return it == m.end() ? -1 : it->second;
}

// ---- character properties ---------------------------------------------------------------

bool is_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

namespace {

enum : uint8_t {
  kLetter = 1, kNumber = 2, kPunct = 4, kSymbol = 8, kMark = 16, kSeparator = 32, kControl = 64,
};

// Property tables read out of PCRE2: run a \p{..}+ pattern over a string of every code point
// and record which code points each class matched. Built once, on first use (~100 ms).
struct PropertyTables {
  std::vector<uint8_t> flags;  // [0x110000] class bits
  std::unordered_map<uint32_t, uint32_t> lower;

  PropertyTables() : flags(0x110000, 0) {
    std::string all;
    all.reserve(4400000);
    for (uint32_t cp = 0; cp < 0x110000; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      append_utf8(all, cp);
    }
    const std::pair<const char*, uint8_t> classes[] = {
        {"\\p{L}+", kLetter}, {"\\p{N}+", kNumber},    {"\\p{P}+", kPunct},
        {"\\p{S}+", kSymbol}, {"\\p{M}+", kMark},      {"\\p{Z}+", kSeparator},
        {"[\\p{Cc}\\p{Cf}\\p{Co}]+", kControl},
    };
    std::vector<std::pair<size_t, size_t>> ranges;
    for (const auto& [pattern, bit] : classes) {
      ranges.clear();
      Regex(pattern).find_all(all, ranges);
      for (const auto& [b, e] : ranges) {
        for (size_t pos = b; pos < e;) flags[decode_utf8(all, pos)] |= bit;
      }
    }
    for (uint32_t cp = 0xD800; cp <= 0xDFFF; ++cp) flags[cp] |= kControl;

    // Lowercase of the upper- and title-case letters (PCRE2 case-forces letters only; the few
    // non-letters with a lowercase form are handled in to_lower()).
    ranges.clear();
    Regex("[\\p{Lu}\\p{Lt}]").find_all(all, ranges);
    std::string cand;
    std::vector<uint32_t> cand_cps;
    for (const auto& [b, e] : ranges) {
      size_t pos = b;
      cand_cps.push_back(decode_utf8(all, pos));
      cand.append(all, b, e - b);
      cand.push_back('\n');
    }
    const std::string lowered = Regex("[^\\n]").substitute_all(cand, "\\L$0");
    size_t pos = 0;
    for (uint32_t cp : cand_cps) {  // one line per candidate; keep its first code point
      if (pos >= lowered.size()) break;
      size_t nl = lowered.find('\n', pos);
      if (nl == std::string::npos) nl = lowered.size();
      size_t at = pos;
      const uint32_t lc = nl > pos ? decode_utf8(std::string_view(lowered).substr(0, nl), at) : cp;
      pos = nl + 1;
      if (lc != cp) lower.emplace(cp, lc);
    }
  }
};

const PropertyTables& tables() {
  static const PropertyTables t;
  return t;
}

}  // namespace

CptFlags cpt_flags(uint32_t cp) {
  CptFlags f;
  f.whitespace = is_whitespace(cp);
  if (cp >= 0x110000) return f;
  const uint8_t b = tables().flags[cp];
  f.letter = b & kLetter;
  f.number = b & kNumber;
  f.punctuation = b & kPunct;
  f.symbol = b & kSymbol;
  f.mark = b & kMark;
  f.separator = b & kSeparator;
  f.control = b & kControl;
  return f;
}

uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (cp == 0x130) return 'i';                                 // İ: first code point of "i̇"
  if (cp >= 0x2160 && cp <= 0x216F) return cp + 0x10;          // Roman numerals Ⅰ..Ⅿ
  if (cp >= 0x24B6 && cp <= 0x24CF) return cp + 0x1A;          // circled letters Ⓐ..Ⓩ
  const auto& m = tables().lower;
  auto it = m.find(cp);
  return it == m.end() ? cp : it->second;
}

uint32_t nfd_first(uint32_t cp) {
  if (cp < 0xC0) return cp;
  if (cp >= 0xAC00 && cp <= 0xD7A3) return 0x1100 + (cp - 0xAC00) / 588;  // Hangul: leading jamo
  const detail::NfdRange* begin = detail::kNfdRanges;
  const detail::NfdRange* end = begin + detail::kNfdRangeCount;
  auto it = std::upper_bound(begin, end, cp, [](uint32_t c, const detail::NfdRange& r) { return c < r.first; });
  if (it == begin) return cp;
  --it;
  return (cp >= it->first && cp <= it->last) ? it->nfd : cp;
}

bool is_cjk_ideograph(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace zen::engine::unicode
