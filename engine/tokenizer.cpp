#include "engine/tokenizer.h"

#include <stdexcept>

#include "engine/tokenizer_bpe.h"
#include "engine/unicode.h"
#include "engine/unicode_regex.h"
#include "engine/vocab.h"

namespace zen::engine {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos).append(to);
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

// The detokenizer's space clean-up: " ?" " !" " ." " ," lose their space, " ' " becomes "'",
// and " 's" " 'm" " 're" " 've" lose the space before the apostrophe.
std::string clean_up_spaces(const std::string& in) {
  std::string a;
  for (size_t i = 0; i < in.size(); ++i) {
    const char x = in[i];
    if (i > 0 && in[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') && !a.empty()) a.pop_back();
    a.push_back(x);
  }
  std::string b;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i];
    if (i > 0 && x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
      if (!b.empty()) b.pop_back();
      a[++i] = '\0';  // drop the space after it too (and it no longer counts as a space)
    }
    b.push_back(x);
  }
  std::string c;
  for (size_t i = 0; i < b.size(); ++i) {
    const char x = b[i];
    if (i > 0 && b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      const char x2 = i + 2 < b.size() ? b[i + 2] : '\0';
      if (x1 == 's' || x1 == 'm' || (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) {
        if (!c.empty()) c.pop_back();
      }
    }
    c.push_back(x);
  }
  return c;
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& gguf) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_ = Vocab::from_gguf(gguf);
  if (t->vocab_->type == VocabType::BPE) {
    t->bpe_ = std::make_unique<BpeMerger>(*t->vocab_, *gguf.get_string_array("tokenizer.ggml.merges"));
    for (const std::string& p : t->vocab_->pre_patterns) t->pre_regexes_.emplace_back(p);
  }
  return t;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Vocab& v = *vocab_;
  std::vector<int32_t> out;
  if (add_special && v.add_bos) out.push_back(v.bos);
  bool prev_special = true;  // SPM: the first text fragment and any after a token get the space prefix
  std::string buf;
  for (const Fragment& f : v.partition(text, parse_special)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view frag = text.substr(f.begin, f.end - f.begin);
    switch (v.type) {
      case VocabType::SPM:
        buf.clear();
        if (v.add_space_prefix && prev_special) buf.push_back(' ');
        buf.append(frag);
        replace_all(buf, " ", "\xE2\x96\x81");
        encode_spm(buf, out);
        break;
      case VocabType::BPE: encode_bpe(frag, out); break;
      case VocabType::WPM: encode_wpm(frag, out); break;
    }
    prev_special = false;
  }
  if (add_special && v.add_eos) out.push_back(v.eos);
  if (add_special && v.add_sep) out.push_back(v.sep);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const Vocab& v = *vocab_;
  if (!v.valid(id)) return {};
  const TokenData& t = v.tokens[id];
  if (!render_special && (t.attr & (kAttrUnknown | kAttrControl))) return {};
  if (t.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return t.text;
  if (t.attr & kAttrByte) {
    const int b = v.byte_of(id);
    return b >= 0 ? std::string(1, static_cast<char>(b)) : t.text;
  }
  if (!(t.attr & kAttrNormal)) return {};  // unused / undefined
  std::string s = t.text;
  if (v.type != VocabType::BPE || v.escape_whitespaces) {
    replace_all(s, "\xE2\x96\x81", " ");
    return s;
  }
  std::string bytes;  // byte-level BPE: every code point stands for one byte
  bytes.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const size_t at = pos;
    const int b = unicode::utf8_cpt_to_byte(unicode::decode_utf8(s, pos));
    if (b >= 0) bytes.push_back(static_cast<char>(b));
    else bytes.append(s, at, pos - at);
  }
  return bytes;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  bool remove_space = vocab_->add_space_prefix;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (remove_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    remove_space = false;
    out += piece;
  }
  return vocab_->clean_spaces ? clean_up_spaces(out) : out;
}

int32_t Tokenizer::n_vocab() const { return vocab_->n_tokens(); }
int32_t Tokenizer::bos() const { return vocab_->bos; }
int32_t Tokenizer::eos() const { return vocab_->eos; }
bool Tokenizer::is_eog(int32_t id) const { return vocab_->is_eog(id); }
const std::vector<int32_t>& Tokenizer::eog_ids() const { return vocab_->eog_ids; }
bool Tokenizer::add_bos() const { return vocab_->add_bos; }
bool Tokenizer::add_eos() const { return vocab_->add_eos; }
bool Tokenizer::clean_spaces() const { return vocab_->clean_spaces; }
const std::string& Tokenizer::model_type() const { return vocab_->model; }
const std::string& Tokenizer::pre_type() const { return vocab_->pre; }
int32_t Tokenizer::find_token(std::string_view text) const { return vocab_->find(text); }
bool Tokenizer::is_control(int32_t id) const {
  return vocab_->valid(id) && (vocab_->tokens[id].attr & kAttrControl);
}

const std::string& Tokenizer::token_text(int32_t id) const {
  if (!vocab_->valid(id)) {
    throw std::out_of_range("token id " + std::to_string(id) + " outside the vocabulary of " +
                            std::to_string(vocab_->n_tokens()));
  }
  return vocab_->tokens[id].text;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tok_.token_to_piece(id, render_special_);
  const size_t keep = unicode::incomplete_utf8_tail(pending_);
  std::string ready = unicode::sanitize_utf8(std::string_view(pending_).substr(0, pending_.size() - keep));
  pending_.erase(0, pending_.size() - keep);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest = unicode::sanitize_utf8(pending_);
  pending_.clear();
  return rest;
}

}  // namespace zen::engine
