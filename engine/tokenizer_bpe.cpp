// Byte-level BPE (tokenizer.ggml.model = gpt2): regex pre-tokenizer, GPT-2 byte mapping,
// then rank-ordered merges inside each pre-token.
#include "engine/tokenizer_bpe.h"

#include <queue>

#include "engine/tokenizer.h"
#include "engine/tokenizer_symbols.h"
#include "engine/unicode.h"
#include "engine/unicode_regex.h"
#include "engine/vocab.h"

namespace zen::engine {

namespace {

uint64_t pair_key(int32_t l, int32_t r) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
}

struct Symbol {
  int32_t atom;   // token id or extra atom, -1 if the text is neither
  int32_t prev, next;
  size_t begin, len;  // bytes of the word
};

struct Candidate {
  int32_t rank;
  int32_t left, right;          // symbol indices
  int32_t left_atom, right_atom;  // what they held when queued (stale check)
  int32_t result;
};

struct CandidateOrder {  // lowest rank first, then leftmost
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  }
};

}  // namespace

BpeMerger::BpeMerger(const Vocab& vocab, const std::vector<std::string>& merges) : vocab_(vocab) {
  merges_.reserve(merges.size() * 2);
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view m = merges[rank];
    const size_t sp = m.find(' ', 1);  // the left operand is never empty
    if (sp == std::string_view::npos || sp + 1 >= m.size()) continue;
    const std::string_view left = m.substr(0, sp), right = m.substr(sp + 1);
    const int32_t l = intern(left), r = intern(right);
    joined.assign(left).append(right);
    const int32_t res = intern(joined);
    merges_.try_emplace(pair_key(l, r), Merge{static_cast<int32_t>(rank), res});  // first (lowest) rank wins
  }
}

int32_t BpeMerger::atom(std::string_view text) const {
  const int32_t id = vocab_.find(text);
  if (id >= 0) return id;
  if (extra_atoms_.empty()) return -1;
  auto it = extra_atoms_.find(std::string(text));
  return it == extra_atoms_.end() ? -1 : it->second;
}

int32_t BpeMerger::intern(std::string_view text) {
  const int32_t a = atom(text);
  if (a >= 0) return a;
  const int32_t id = vocab_.n_tokens() + static_cast<int32_t>(extra_atoms_.size());
  extra_atoms_.emplace(std::string(text), id);
  return id;
}

void BpeMerger::emit_fallback(std::string_view piece, std::vector<int32_t>& out) const {
  for (char c : piece) {
    if (vocab_.byte_encode) {
      const int32_t id = vocab_.find(std::string_view(&c, 1));  // only printable ASCII has such tokens
      if (id >= 0) out.push_back(id);
    } else {
      const int32_t id = vocab_.byte_token(static_cast<uint8_t>(c));
      if (id >= 0) out.push_back(id);
    }
  }
}

void BpeMerger::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  auto syms = split_symbols<Symbol>(word, [&](size_t begin, size_t len) {
    return Symbol{atom(word.substr(begin, len)), -1, -1, begin, len};
  });

  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const int32_t la = syms[l].atom, ra = syms[r].atom;
    if (la < 0 || ra < 0) return;
    auto it = merges_.find(pair_key(la, ra));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, l, r, la, ra, it->second.result});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) consider(i - 1, i);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = syms[c.left];
    Symbol& right = syms[c.right];
    if (left.len == 0 || right.len == 0 || left.next != c.right || left.atom != c.left_atom ||
        right.atom != c.right_atom) {
      continue;  // one side changed since this pair was queued
    }
    left.atom = c.result;
    absorb_next(syms, c.left);
    consider(syms[c.left].prev, c.left);
    consider(c.left, syms[c.left].next);
  }

  for (const Symbol& s : syms) {
    if (s.len == 0) continue;
    if (s.atom >= 0 && s.atom < vocab_.n_tokens()) {
      out.push_back(s.atom);
    } else {
      emit_fallback(word.substr(s.begin, s.len), out);
    }
  }
}

void Tokenizer::encode_bpe(std::string_view raw, std::vector<int32_t>& out) const {
  const Vocab& v = *vocab_;
  std::string text = unicode::sanitize_utf8(raw);  // invalid bytes -> U+FFFD, as the reference does
  if (v.escape_whitespaces) {
    std::string esc;
    esc.reserve(text.size() + text.size() / 2);
    for (char c : text) {
      if (c == ' ') esc += "\xE2\x96\x81";
      else esc.push_back(c);
    }
    text.swap(esc);
  }
  std::string word;
  for (const auto& [b, e] : regex_split(text, pre_regexes_)) {
    const std::string_view piece(text.data() + b, e - b);
    if (v.byte_encode) {
      word.clear();
      for (char c : piece) word += unicode::byte_to_utf8(static_cast<uint8_t>(c));
    } else {
      word.assign(piece);
    }
    if (v.ignore_merges) {
      if (int32_t id = v.find(word); id >= 0) {
        out.push_back(id);
        continue;
      }
    }
    if (!v.byte_encode && word.find_first_not_of('\n') == std::string::npos) {
      if (int32_t id = v.find(word); id >= 0) {  // a run of newlines that is one token
        out.push_back(id);
        continue;
      }
    }
    bpe_->encode_word(word, out);
  }
}

}  // namespace zen::engine
