#include "engine/vocab.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <stdexcept>

#include "engine/vocab_pre.h"

namespace zen::engine {

namespace {

std::runtime_error vocab_error(const GgufFile& g, const std::string& what) {
  return std::runtime_error(g.name + ": tokenizer: " + what);
}

uint32_t attr_from_type(int64_t t) {
  switch (t) {  // tokenizer.ggml.token_type values
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

// Token texts that end a turn or a generation in the common chat formats. Models rarely
// name them all in metadata, so they are found by text (and treated as control tokens).
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // DeepSeek <｜end▁of▁sentence｜>
    "<end_of_utterance>",
};
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
};
// Fill-in-the-middle markers: control tokens; the pad/repo/file-separator ones also end generation.
constexpr std::string_view kFimTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>",
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>",
    "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
    "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
};
constexpr std::string_view kFimEogTexts[] = {
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
    "<reponame>", "<|file_sep|>", "<file_sep>", "<file-sep>",
};

template <size_t N>
bool in(const std::string_view (&list)[N], std::string_view s) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

std::string lower_ascii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::unique_ptr<Vocab> Vocab::from_gguf(const GgufFile& g) {
  auto v = std::make_unique<Vocab>();
  const auto model = g.get_string("tokenizer.ggml.model");
  if (!model) throw vocab_error(g, "no tokenizer.ggml.model key (the file has no vocabulary)");
  v->model = *model;
  v->pre = g.get_string("tokenizer.ggml.pre").value_or("");

  if (v->model == "llama") {
    v->type = VocabType::SPM;
    v->bos = 1, v->eos = 2, v->unk = 0;
    v->add_space_prefix = true, v->add_bos = true;
  } else if (v->model == "bert") {
    v->type = VocabType::WPM;
    v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask = 103;
    v->clean_spaces = true, v->add_bos = true, v->add_sep = true;
  } else if (v->model == "gpt2" || v->model == "gemma4") {
    v->type = VocabType::BPE;
    if (v->model == "gpt2") v->bos = 11, v->eos = 11;
    if (v->model == "gemma4") v->pre = "gemma4";  // this model type always uses its own pre-tokenizer
    const auto cfg = bpe_pre_config(v->pre);
    if (!cfg) {
      throw vocab_error(g, "unsupported tokenizer.ggml.pre '" + v->pre + "' for a BPE vocabulary; supported: " +
                               supported_bpe_pre_names());
    }
    v->pre_patterns = cfg->patterns;
    v->clean_spaces = cfg->clean_spaces;
    v->ignore_merges = cfg->ignore_merges;
    v->add_bos = cfg->force_add_bos;
    v->add_sep = cfg->add_sep;
    v->escape_whitespaces = cfg->escape_whitespaces;
    v->byte_encode = cfg->byte_encode;
    if (cfg->no_bos) v->bos = -1;
    const auto* merges = g.get_string_array("tokenizer.ggml.merges");
    if (!merges) throw vocab_error(g, "BPE vocabulary without tokenizer.ggml.merges");
  } else {
    throw vocab_error(g, "unsupported tokenizer.ggml.model '" + v->model + "'; supported: llama (SentencePiece), "
                         "gpt2 (byte-level BPE), bert (WordPiece)");
  }
  if (auto sp = g.get_bool("tokenizer.ggml.add_space_prefix")) v->add_space_prefix = *sp;

  const auto* texts = g.get_string_array("tokenizer.ggml.tokens");
  if (!texts || texts->empty()) throw vocab_error(g, "missing or empty tokenizer.ggml.tokens");
  if (texts->size() > static_cast<size_t>(INT32_MAX)) throw vocab_error(g, "too many tokens");
  const auto* scores = g.get_float_array("tokenizer.ggml.scores");
  const auto* types = g.get_int_array("tokenizer.ggml.token_type");
  if (scores && scores->size() != texts->size()) {
    throw vocab_error(g, "tokenizer.ggml.scores has " + std::to_string(scores->size()) + " entries for " +
                             std::to_string(texts->size()) + " tokens");
  }
  if (types && types->size() != texts->size()) {
    throw vocab_error(g, "tokenizer.ggml.token_type has " + std::to_string(types->size()) + " entries for " +
                             std::to_string(texts->size()) + " tokens");
  }
  v->tokens.resize(texts->size());
  for (size_t i = 0; i < texts->size(); ++i) {
    TokenData& t = v->tokens[i];
    t.text = (*texts)[i];
    t.score = scores ? static_cast<float>((*scores)[i]) : 0.0f;
    t.attr = types ? attr_from_type((*types)[i]) : kAttrNormal;
  }
  v->index_tokens();

  // Special token ids from metadata; an id outside the vocabulary keeps the default.
  const std::pair<const char*, int32_t*> ids[] = {
      {"tokenizer.ggml.bos_token_id", &v->bos},       {"tokenizer.ggml.eos_token_id", &v->eos},
      {"tokenizer.ggml.eot_token_id", &v->eot},       {"tokenizer.ggml.eom_token_id", &v->eom},
      {"tokenizer.ggml.unknown_token_id", &v->unk},   {"tokenizer.ggml.seperator_token_id", &v->sep},
      {"tokenizer.ggml.padding_token_id", &v->pad},   {"tokenizer.ggml.mask_token_id", &v->mask},
  };
  for (const auto& [key, dst] : ids) {
    const auto val = g.get_int(key);
    if (val && *val >= 0 && *val < v->n_tokens()) *dst = static_cast<int32_t>(*val);
  }
  if (auto b = g.get_bool("tokenizer.ggml.add_bos_token")) v->add_bos = *b;
  if (auto b = g.get_bool("tokenizer.ggml.add_eos_token")) v->add_eos = *b;
  if (auto b = g.get_bool("tokenizer.ggml.add_sep_token")) v->add_sep = *b;
  if (v->type == VocabType::BPE && bpe_pre_config(v->pre)->always_add_bos) v->add_bos = true;
  if (auto b = g.get_bool("tokenizer.ggml.normalizer.lowercase")) v->lowercase = *b;
  v->strip_accents = v->lowercase;
  if (auto b = g.get_bool("tokenizer.ggml.normalizer.strip_accents")) v->strip_accents = *b;
  if (v->add_bos && !v->valid(v->bos)) v->add_bos = false;
  if (v->add_eos && !v->valid(v->eos)) v->add_eos = false;
  if (v->add_sep && !v->valid(v->sep)) v->add_sep = false;
  v->finish_special_tokens(g);
  return v;
}

void Vocab::index_tokens() {
  index_.clear();
  max_token_len = 0;
  index_.reserve(tokens.size() * 2);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].text.empty()) continue;
    max_token_len = std::max(max_token_len, tokens[i].text.size());
    index_[tokens[i].text] = static_cast<int32_t>(i);  // a later duplicate wins
  }
}

void Vocab::finish_special_tokens(const GgufFile& g) {
  // End-of-turn, end-of-generation and fill-in-the-middle tokens found by text become control tokens.
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < n_tokens(); ++id) {
    const std::string& t = tokens[id].text;
    if (eot < 0 && in(kEotTexts, t)) eot = id;
    if (eom < 0 && t == "<|eom_id|>") eom = id;
    const bool is_eog_text = in(kEogTexts, t) || in(kFimEogTexts, t);
    if (is_eog_text || in(kEotTexts, t) || in(kFimTexts, t) || t == "<|eom_id|>") {
      if (!(tokens[id].attr & kAttrControl)) tokens[id].attr = kAttrControl;
    }
    if (is_eog_text) eog.push_back(id);
  }
  for (int32_t id : {eos, eot, eom}) {
    if (valid(id)) eog.push_back(id);
  }
  std::sort(eog.begin(), eog.end());
  eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
  eog_ids = std::move(eog);

  special_cache.clear();
  for (int32_t id = 0; id < n_tokens(); ++id) {
    if ((tokens[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) && !tokens[id].text.empty()) {
      special_cache.push_back(id);
    }
  }
  std::stable_sort(special_cache.begin(), special_cache.end(),
                   [&](int32_t a, int32_t b) { return tokens[a].text.size() > tokens[b].text.size(); });

  // Phi-3 strips the whitespace after its special tokens (a per-model rule by general.name).
  const std::string name = lower_ascii(g.get_string("general.name").value_or(""));
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    for (int32_t id : special_cache) tokens[id].attr |= kAttrRStrip;
    if (int32_t id = find("</s>"); id >= 0) tokens[id].attr |= kAttrRStrip;
    for (const char* t : {"<unk>", "<s>", "<|endoftext|>"}) {
      if (int32_t id = find(t); id >= 0) tokens[id].attr &= ~kAttrRStrip;
    }
  }
}

int32_t Vocab::find(std::string_view text) const {
  auto it = index_.find(text);
  return it == index_.end() ? -1 : it->second;
}

int32_t Vocab::byte_token(uint8_t b) const {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
  if (int32_t id = find(buf); id >= 0) return id;
  return find(std::string_view(reinterpret_cast<const char*>(&b), 1));
}

int Vocab::byte_of(int32_t id) const {
  if (!valid(id)) return -1;
  const std::string& t = tokens[id].text;
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; ++i) {
    const char c = t[i];
    const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

bool Vocab::is_eog(int32_t id) const { return std::binary_search(eog_ids.begin(), eog_ids.end(), id); }

std::vector<Fragment> Vocab::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> frags;
  if (text.empty()) return frags;
  frags.push_back({-1, 0, text.size()});
  bool has_byte[256] = {};  // a token whose first byte is absent cannot occur
  for (char c : text) has_byte[static_cast<uint8_t>(c)] = true;
  std::vector<Fragment> next;
  for (int32_t id : special_cache) {
    const TokenData& tok = tokens[id];
    if (!parse_special && (tok.attr & (kAttrControl | kAttrUnknown))) continue;
    if (!has_byte[static_cast<uint8_t>(tok.text[0])]) continue;
    const std::string_view needle = tok.text;
    next.clear();
    bool changed = false;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t b = f.begin;
      const size_t e = f.end;
      while (b < e) {
        const size_t m = text.substr(0, e).find(needle, b);
        if (m == std::string_view::npos) break;
        changed = true;
        size_t left_end = m;
        if (tok.attr & kAttrLStrip) {
          while (left_end > b && std::isspace(static_cast<unsigned char>(text[left_end - 1]))) --left_end;
        }
        if (left_end > b) next.push_back({-1, b, left_end});
        next.push_back({id, m, m + needle.size()});
        b = m + needle.size();
        if (tok.attr & kAttrRStrip) {
          while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
        }
      }
      if (b < e) next.push_back({-1, b, e});
    }
    if (changed) frags.swap(next);
  }
  return frags;
}

}  // namespace zen::engine
