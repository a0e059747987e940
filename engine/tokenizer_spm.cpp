// SentencePiece BPE (tokenizer.ggml.model = llama): start from UTF-8 characters and keep
// merging the adjacent pair whose concatenation is the highest-scoring token; whatever is
// left that is not a token becomes byte tokens (<0xXX>).
#include <queue>

#include "engine/tokenizer.h"
#include "engine/tokenizer_symbols.h"
#include "engine/vocab.h"

namespace zen::engine {

namespace {

struct Symbol {
  int32_t prev, next;
  size_t begin, len;
};

struct Bigram {
  float score;
  int32_t left, right;
  size_t len;  // bytes of the merged text when queued (stale check)
};

struct BigramOrder {  // highest score first, then leftmost
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  }
};

}  // namespace

void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>& out) const {
  const Vocab& v = *vocab_;
  auto syms = split_symbols<Symbol>(text, [](size_t, size_t) { return Symbol{}; });

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const size_t len = syms[l].len + syms[r].len;
    const int32_t id = v.find(text.substr(syms[l].begin, len));
    if (id < 0) return;
    queue.push({v.tokens[id].score, l, r, len});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(syms.size()); ++i) consider(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = syms[b.left];
    Symbol& right = syms[b.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != b.len) continue;  // stale
    absorb_next(syms, b.left);
    consider(syms[b.left].prev, b.left);
    consider(b.left, syms[b.left].next);
  }

  for (int32_t i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) {
    const std::string_view piece = text.substr(syms[i].begin, syms[i].len);
    if (int32_t id = v.find(piece); id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : piece) {  // byte fallback
      int32_t id = v.byte_token(static_cast<uint8_t>(c));
      if (id < 0) id = v.unk;
      if (id >= 0) out.push_back(id);
    }
  }
}

}  // namespace zen::engine
