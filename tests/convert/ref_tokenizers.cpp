// Reference tokenizers for the convert tests, written from the source definitions:
// SentencePiece (tokenizer.model pieces and scores) and byte-level BPE (tokenizer.json vocab,
// merges and split regex, evaluated with std::regex on ASCII text).
#include <algorithm>
#include <climits>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

#include "tests/convert/hf_checkpoint.h"

namespace zen::test {

using nlohmann::json;

const char* const kGpt2Ecma = R"('s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+)";
const char* const kQwen2Hf =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Ecma =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kLlama3Hf =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kLlama3Ecma =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

const std::string kMark = "\xE2\x96\x81";  // U+2581

std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    out.push_back(s.substr(i, std::min(n, s.size() - i)));
    i += n;
  }
  return out;
}

std::string encode_utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else if (cp < 0x800) s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
  else s += static_cast<char>(0xE0 | (cp >> 12)), s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), s += static_cast<char>(0x80 | (cp & 0x3F));
  return s;
}

// GPT-2's byte -> code point table: printable Latin-1 bytes map to themselves, the rest to 256+n.
const std::vector<std::string>& byte_chars() {
  static const std::vector<std::string> t = [] {
    std::vector<std::string> m(256);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      m[b] = encode_utf8(keep ? b : next++);
    }
    return m;
  }();
  return t;
}

// Words of the corpus with counts, as symbol sequences.
using Words = std::map<std::vector<std::string>, int>;

// Merges the most frequent adjacent pair (ties: smallest pair) n times; calls add(a, b) per merge.
template <typename Add>
void learn_merges(Words words, int n, Add add) {
  for (int it = 0; it < n; ++it) {
    std::map<std::pair<std::string, std::string>, int> count;
    for (const auto& [syms, c] : words)
      for (size_t i = 0; i + 1 < syms.size(); ++i) count[{syms[i], syms[i + 1]}] += c;
    if (count.empty()) return;
    auto best = std::max_element(count.begin(), count.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
    const auto pair = best->first;
    add(pair.first, pair.second);
    Words next;
    for (const auto& [syms, c] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == pair.first && syms[i + 1] == pair.second) {
          out.push_back(pair.first + pair.second);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      next[out] += c;
    }
    words.swap(next);
  }
}

std::vector<std::string> regex_pieces(const std::string& text, const std::string& ecma) {
  const std::regex re(ecma, std::regex::ECMAScript);
  std::vector<std::string> out;
  size_t last = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    const size_t pos = static_cast<size_t>(it->position());
    if (pos > last) out.push_back(text.substr(last, pos - last));
    if (it->length() > 0) out.push_back(it->str());
    last = pos + static_cast<size_t>(it->length());
  }
  if (last < text.size()) out.push_back(text.substr(last));
  return out;
}

}  // namespace

std::string byte_level(const std::string& raw) {
  std::string s;
  for (unsigned char c : raw) s += byte_chars()[c];
  return s;
}

engine::SpmModel train_spm(const std::string& corpus, int n_merges) {
  engine::SpmModel m;
  m.model_type = 2;
  m.byte_fallback = true;
  m.pieces.push_back({"<unk>", 0, 2});
  m.pieces.push_back({"<s>", 0, 3});
  m.pieces.push_back({"</s>", 0, 3});
  char hex[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    m.pieces.push_back({hex, 0, 6});
  }
  Words words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) ++words[utf8_chars(kMark + word)];
    word.clear();
  };
  for (char c : corpus) {
    if (c == ' ' || c == '\n') flush();
    else word += c;
  }
  flush();
  std::vector<std::string> chars;
  for (const auto& [syms, c] : words)
    for (const auto& s : syms)
      if (std::find(chars.begin(), chars.end(), s) == chars.end()) chars.push_back(s);
  std::vector<engine::SpmPiece> merged;
  learn_merges(words, n_merges, [&](const std::string& a, const std::string& b) {
    const bool dup = std::any_of(merged.begin(), merged.end(), [&](const auto& p) { return p.piece == a + b; });
    if (!dup) merged.push_back({a + b, -static_cast<float>(merged.size()), 1});
  });
  for (auto& p : merged) m.pieces.push_back(p);
  float score = -static_cast<float>(merged.size()) - 1;
  for (const auto& c : chars) m.pieces.push_back({c, score--, 1});
  return m;
}

std::vector<int32_t> spm_encode(const engine::SpmModel& m, const std::string& text, bool add_bos) {
  std::map<std::string, std::pair<int32_t, float>> piece;
  for (size_t i = 0; i < m.pieces.size(); ++i) piece.emplace(m.pieces[i].piece, std::make_pair(static_cast<int32_t>(i), m.pieces[i].score));
  std::string s = m.add_dummy_prefix ? kMark : "";
  for (char c : text) s += c == ' ' ? kMark : std::string(1, c);
  std::vector<std::string> sym = utf8_chars(s);
  for (;;) {
    int best = -1;
    float best_score = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = piece.find(sym[i] + sym[i + 1]);
      if (it != piece.end() && (best < 0 || it->second.second > best_score)) best = static_cast<int>(i), best_score = it->second.second;
    }
    if (best < 0) break;
    sym[static_cast<size_t>(best)] += sym[static_cast<size_t>(best) + 1];
    sym.erase(sym.begin() + best + 1);
  }
  std::vector<int32_t> ids;
  if (add_bos) ids.push_back(m.bos_id);
  for (const std::string& x : sym) {
    auto it = piece.find(x);
    if (it != piece.end()) {
      ids.push_back(it->second.first);
      continue;
    }
    for (unsigned char c : x) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", c);
      ids.push_back(piece.at(hex).first);
    }
  }
  return ids;
}

TestBpe train_bpe(const std::string& corpus, int n_merges, std::string hf_regex, std::string ecma_regex) {
  TestBpe b;
  b.hf_regex = std::move(hf_regex);
  b.ecma_regex = std::move(ecma_regex);
  for (int c = 0; c < 256; ++c) b.tokens.push_back(byte_chars()[static_cast<size_t>(c)]);
  Words words;
  for (const std::string& p : regex_pieces(corpus, b.ecma_regex)) ++words[utf8_chars(byte_level(p))];
  learn_merges(words, n_merges, [&](const std::string& l, const std::string& r) {
    b.merges.emplace_back(l, r);
    if (std::find(b.tokens.begin(), b.tokens.end(), l + r) == b.tokens.end()) b.tokens.push_back(l + r);
  });
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>"}) {
    b.added.emplace_back(static_cast<int32_t>(b.tokens.size()), s);
    b.tokens.push_back(s);
  }
  return b;
}

void write_bpe_tokenizer(const fs::path& dir, const TestBpe& b) {
  json vocab = json::object();
  for (size_t i = 0; i < b.tokens.size(); ++i) {
    const bool added = std::any_of(b.added.begin(), b.added.end(), [&](const auto& a) { return a.first == static_cast<int32_t>(i); });
    if (!added) vocab[b.tokens[i]] = i;
  }
  json merges = json::array();
  for (const auto& [l, r] : b.merges) {
    if (b.ignore_merges) merges.push_back({l, r});  // newer tokenizers.json: pairs
    else merges.push_back(l + " " + r);
  }
  json added = json::array();
  for (const auto& [id, text] : b.added)
    added.push_back({{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  json byte_level_pt = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", b.hf_regex.empty()}};
  json pre = b.hf_regex.empty()
                 ? byte_level_pt
                 : json{{"type", "Sequence"},
                        {"pretokenizers",
                         {{{"type", "Split"}, {"pattern", {{"Regex", b.hf_regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                          byte_level_pt}}};
  json post = b.bos_template ? json{{"type", "TemplateProcessing"},
                                    {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}}
                             : json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  json t = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", added},
            {"normalizer", b.bos_template ? json(nullptr) : json{{"type", "NFC"}}},
            {"pre_tokenizer", pre},
            {"post_processor", post},
            {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
            {"model",
             {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
              {"ignore_merges", b.ignore_merges}, {"vocab", vocab}, {"merges", merges}}}};
  write_text(dir / "tokenizer.json", t.dump(1));
  json cfg = {{"clean_up_tokenization_spaces", b.clean_spaces},
              {"eos_token", "<|endoftext|>"},
              {"bos_token", b.bos_template ? json("<|begin_of_text|>") : json(nullptr)},
              {"pad_token", "<|endoftext|>"},
              {"chat_template", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"}};
  write_text(dir / "tokenizer_config.json", cfg.dump(1));
}

std::vector<int32_t> bpe_encode(const TestBpe& b, const std::string& text) {
  std::map<std::string, int32_t> id_of;
  for (size_t i = 0; i < b.tokens.size(); ++i) id_of.emplace(b.tokens[i], static_cast<int32_t>(i));
  std::map<std::pair<std::string, std::string>, int> rank;
  for (size_t i = 0; i < b.merges.size(); ++i) rank.emplace(b.merges[i], static_cast<int>(i));
  std::vector<int32_t> ids;
  if (b.bos_template) ids.push_back(id_of.at("<|begin_of_text|>"));
  auto encode_piece = [&](const std::string& piece) {
    const std::string bl = byte_level(piece);
    if (b.ignore_merges && id_of.count(bl)) {
      ids.push_back(id_of.at(bl));
      return;
    }
    std::vector<std::string> sym = utf8_chars(bl);
    for (;;) {
      int best = -1, best_rank = INT_MAX;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        auto it = rank.find({sym[i], sym[i + 1]});
        if (it != rank.end() && it->second < best_rank) best = static_cast<int>(i), best_rank = it->second;
      }
      if (best < 0) break;
      sym[static_cast<size_t>(best)] += sym[static_cast<size_t>(best) + 1];
      sym.erase(sym.begin() + best + 1);
    }
    for (const auto& s : sym) ids.push_back(id_of.at(s));
  };
  // Special tokens first (earliest match, longest at a position), then the split regex.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t at = std::string::npos, len = 0;
    int32_t special = -1;
    for (const auto& [id, content] : b.added) {
      const size_t f = text.find(content, pos);
      if (f != std::string::npos && (f < at || (f == at && content.size() > len))) at = f, len = content.size(), special = id;
    }
    const std::string plain = text.substr(pos, at == std::string::npos ? std::string::npos : at - pos);
    for (const std::string& p : regex_pieces(plain, b.ecma_regex)) encode_piece(p);
    if (special < 0) break;
    ids.push_back(special);
    pos = at + len;
  }
  return ids;
}

}  // namespace zen::test
