// The doubly linked list of symbols that SPM and BPE merge over (internal to the tokenizer).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/unicode.h"

namespace zen::engine {

// One symbol per UTF-8 character of `text`. A malformed byte is a symbol of its own, so a
// stray lead byte never swallows the characters after it.
// `make(begin, len)` builds a symbol; prev/next/begin/len are then linked in.
template <class Symbol, class Make>
std::vector<Symbol> split_symbols(std::string_view text, Make make) {
  std::vector<Symbol> syms;
  syms.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = unicode::utf8_char_len(text, pos);
    const auto idx = static_cast<int32_t>(syms.size());
    Symbol s = make(pos, len);
    s.prev = idx - 1;
    s.next = -1;
    s.begin = pos;
    s.len = len;
    syms.push_back(s);
    if (idx > 0) syms[idx - 1].next = idx;
    pos += len;
  }
  return syms;
}

// Merges the right neighbour of syms[l] into it and unlinks the neighbour.
template <class Symbol>
void absorb_next(std::vector<Symbol>& syms, int32_t l) {
  Symbol& left = syms[l];
  Symbol& right = syms[left.next];
  left.len += right.len;
  right.len = 0;
  left.next = right.next;
  if (right.next >= 0) syms[right.next].prev = l;
}

}  // namespace zen::engine
