// Tokenizer of a Hugging Face checkpoint -> tokenizer.ggml.* metadata.
//   tokenizer.model (SentencePiece)  -> model "llama": pieces, scores, types, add_space_prefix
//   tokenizer.json (byte-level BPE)  -> model "gpt2": tokens, types, merges, pre (by regex)
// Both: special ids and add_bos/add_eos from tokenizer_config.json (config.json as fallback),
// the chat template, and [PAD{i}] fillers up to config.json's vocab_size.
#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "engine/convert_internal.h"
#include "engine/convert_spm.h"
#include "engine/gguf.h"
#include "engine/vocab_pre.h"

namespace zen::engine::convert {

namespace fs = std::filesystem;

namespace {

// tokenizer.ggml.token_type values
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5;

struct VocabOut {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<bool> set;  // id already has a token

  void place(const std::string& where, int64_t id, std::string text, float score, int32_t type, bool overwrite) {
    if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
      throw std::runtime_error(where + ": token id " + std::to_string(id) + " ('" + text + "') is outside the vocabulary of " +
                               std::to_string(tokens.size()) + " (config.json vocab_size)");
    const auto i = static_cast<size_t>(id);
    if (set[i] && !overwrite) throw std::runtime_error(where + ": token id " + std::to_string(id) + " is used twice");
    tokens[i] = std::move(text);
    scores[i] = score;
    types[i] = type;
    set[i] = true;
  }
  // Unused ids become "[PAD{i}]" tokens, as llama.cpp's converter writes them.
  void pad() {
    for (size_t i = 0; i < tokens.size(); ++i)
      if (!set[i]) {
        tokens[i] = "[PAD" + std::to_string(i) + "]";
        scores[i] = -1000.0f;
        types[i] = kUnused;
      }
  }
  int64_t find(const std::string& text) const {
    for (size_t i = 0; i < tokens.size(); ++i)
      if (set[i] && tokens[i] == text) return static_cast<int64_t>(i);
    return -1;
  }
};

// Optional fields of tokenizer.json objects: a wrong type is an error, never a silent default.
bool flag(const json& o, const char* k, bool dflt, const std::string& where) {
  if (!o.is_object() || !o.contains(k) || o[k].is_null()) return dflt;
  if (!o[k].is_boolean()) throw std::runtime_error(where + ": '" + k + "' is not true/false");
  return o[k].get<bool>();
}
std::string str(const json& o, const char* k) {
  return o.is_object() && o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : "";
}

VocabOut make_vocab(int64_t n) {
  VocabOut v;
  v.tokens.resize(static_cast<size_t>(n));
  v.scores.assign(static_cast<size_t>(n), 0.0f);
  v.types.assign(static_cast<size_t>(n), kNormal);
  v.set.assign(static_cast<size_t>(n), false);
  return v;
}

// "bos_token": "<s>" or {"content": "<s>", ...}
std::optional<std::string> special_text(const json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// tokenizer_config.json "added_tokens_decoder": {"32000": {"content": ..., "special": true}}
void place_added_decoder(VocabOut& v, const json& cfg, const std::string& where) {
  if (!cfg.is_object() || !cfg.contains("added_tokens_decoder") || !cfg["added_tokens_decoder"].is_object()) return;
  for (const auto& [key, t] : cfg["added_tokens_decoder"].items()) {
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string())
      throw std::runtime_error(where + ": added_tokens_decoder['" + key + "'] has no content");
    int64_t id = -1;
    try {
      id = std::stoll(key);
    } catch (...) {
      throw std::runtime_error(where + ": added_tokens_decoder key '" + key + "' is not a token id");
    }
    const bool special = t.contains("special") && t["special"].is_boolean() && t["special"].get<bool>();
    v.place(where, id, t["content"].get<std::string>(), 0.0f, special ? kControl : kUserDefined, true);
  }
}

void write_specials(GgufWriter& w, const VocabOut& v, const json& tcfg, const HfConfig& c, int64_t bos, int64_t eos,
                    int64_t unk, int64_t pad, bool add_bos, bool add_eos) {
  auto by_text = [&](const char* key, int64_t dflt) {
    if (auto t = special_text(tcfg, key)) {
      const int64_t id = v.find(*t);
      if (id >= 0) return id;
    }
    return dflt;
  };
  bos = by_text("bos_token", bos >= 0 ? bos : c.bos);
  eos = by_text("eos_token", eos >= 0 ? eos : c.eos);
  unk = by_text("unk_token", unk);
  pad = by_text("pad_token", pad >= 0 ? pad : c.pad);
  const int64_t n = static_cast<int64_t>(v.tokens.size());
  auto put = [&](const char* key, int64_t id) {
    if (id >= 0 && id < n) w.set_u32(key, static_cast<uint32_t>(id));
  };
  put("tokenizer.ggml.bos_token_id", bos);
  put("tokenizer.ggml.eos_token_id", eos);
  put("tokenizer.ggml.unknown_token_id", unk);
  put("tokenizer.ggml.padding_token_id", pad);
  if (tcfg.is_object() && tcfg.contains("add_bos_token") && tcfg["add_bos_token"].is_boolean()) add_bos = tcfg["add_bos_token"].get<bool>();
  if (tcfg.is_object() && tcfg.contains("add_eos_token") && tcfg["add_eos_token"].is_boolean()) add_eos = tcfg["add_eos_token"].get<bool>();
  w.set_bool("tokenizer.ggml.add_bos_token", add_bos && bos >= 0 && bos < n);
  w.set_bool("tokenizer.ggml.add_eos_token", add_eos && eos >= 0 && eos < n);
}

void write_vocab(GgufWriter& w, const VocabOut& v, bool with_scores) {
  w.set_strings("tokenizer.ggml.tokens", v.tokens);
  if (with_scores) w.set_f32s("tokenizer.ggml.scores", v.scores);
  w.set_i32s("tokenizer.ggml.token_type", v.types);
}

TokenizerInfo write_spm(GgufWriter& w, const std::string& path, const json& tcfg, const HfConfig& c) {
  auto map = MappedFile::open(path);
  const SpmModel m = parse_spm_model(map->bytes(), path);
  if (m.model_type != 1 && m.model_type != 2)
    throw std::runtime_error(path + ": SentencePiece model_type " + std::to_string(m.model_type) +
                             " is not supported (supported: unigram, BPE)");
  if (static_cast<int64_t>(m.pieces.size()) > c.n_vocab)
    throw std::runtime_error(path + ": " + std::to_string(m.pieces.size()) + " pieces but config.json vocab_size is " +
                             std::to_string(c.n_vocab));
  VocabOut v = make_vocab(c.n_vocab);
  for (size_t i = 0; i < m.pieces.size(); ++i)
    v.place(path, static_cast<int64_t>(i), m.pieces[i].piece, m.pieces[i].score, m.pieces[i].type, false);
  place_added_decoder(v, tcfg, path);
  v.pad();
  w.set_string("tokenizer.ggml.model", "llama");
  write_vocab(w, v, true);
  w.set_bool("tokenizer.ggml.add_space_prefix", m.add_dummy_prefix);
  write_specials(w, v, tcfg, c, m.bos_id, m.eos_id, m.unk_id, m.pad_id, true, false);
  return {"llama", ""};
}

// "(?i:abc)" -> "(?:[aA][bB][cC])": case folding spelled out for ASCII letters, the form the
// engine's pre-tokenizer table uses.
std::string expand_case_insensitive(const std::string& p) {
  std::string out;
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, 4, "(?i:") != 0) {
      out += p[i++];
      continue;
    }
    out += "(?:";
    i += 4;
    int depth = 1;
    while (i < p.size() && depth > 0) {
      const char ch = p[i];
      if (ch == '\\' && i + 1 < p.size()) {
        out += p.substr(i, 2);
        i += 2;
        continue;
      }
      if (ch == '(') ++depth;
      if (ch == ')') --depth;
      if (std::isalpha(static_cast<unsigned char>(ch))) {
        out += '[';
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        out += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        out += ']';
      } else {
        out += ch;
      }
      ++i;
    }
  }
  return out;
}

// The split regexes of a tokenizer.json pre_tokenizer, in order. Sets byte_level when a
// ByteLevel step is present.
void collect_patterns(const json& pt, const std::string& where, std::vector<std::string>& out, bool& byte_level) {
  if (pt.is_null()) return;
  const std::string type = pt.is_object() && pt.contains("type") && pt["type"].is_string() ? pt["type"].get<std::string>() : "";
  if (type == "Sequence" && pt.contains("pretokenizers") && pt["pretokenizers"].is_array()) {
    for (const json& s : pt["pretokenizers"]) collect_patterns(s, where, out, byte_level);
  } else if (type == "Split") {
    if (!pt.contains("pattern") || !pt["pattern"].is_object() || !pt["pattern"].contains("Regex") ||
        !pt["pattern"]["Regex"].is_string())
      throw std::runtime_error(where + ": pre_tokenizer Split without a Regex pattern is not supported");
    if (flag(pt, "invert", false, where)) throw std::runtime_error(where + ": pre_tokenizer Split with invert = true is not supported");
    out.push_back(expand_case_insensitive(pt["pattern"]["Regex"].get<std::string>()));
  } else if (type == "ByteLevel") {
    byte_level = true;
    if (flag(pt, "add_prefix_space", false, where))
      throw std::runtime_error(where + ": ByteLevel add_prefix_space = true is not supported");
    if (flag(pt, "use_regex", true, where)) out.push_back(bpe_pre_config("gpt-2")->patterns.at(0));
  } else if (type == "Digits") {
    out.push_back(flag(pt, "individual_digits", false, where) ? R"(\p{N})" : R"(\p{N}+)");
  } else {
    throw std::runtime_error(where + ": unsupported pre_tokenizer '" + (type.empty() ? pt.dump() : type) + "'");
  }
}

// The tokenizer.ggml.pre name whose split regexes equal `patterns`; among equals, the one whose
// flags agree with the tokenizer (ignore_merges, clean_up_tokenization_spaces), preferring the
// names llama.cpp's converter writes.
std::string choose_pre(const std::vector<std::string>& patterns, bool ignore_merges, bool clean_spaces, const std::string& where) {
  std::vector<std::string> names;
  const std::string all = supported_bpe_pre_names();
  for (size_t b = 0; b < all.size();) {
    size_t e = all.find(", ", b);
    if (e == std::string::npos) e = all.size();
    names.push_back(all.substr(b, e - b));
    b = e + 2;
  }
  static const std::vector<std::string> preferred = {"llama-bpe", "qwen2", "gpt-2"};
  std::string best;
  int best_score = -1;
  for (const std::string& n : names) {
    const auto cfg = bpe_pre_config(n);
    if (!cfg || cfg->patterns != patterns || !cfg->byte_encode) continue;
    int score = (cfg->ignore_merges == ignore_merges ? 4 : 0) + (cfg->clean_spaces == clean_spaces ? 2 : 0) +
                (std::find(preferred.begin(), preferred.end(), n) != preferred.end() ? 1 : 0);
    if (score > best_score) best = n, best_score = score;
  }
  if (best.empty()) {
    std::string shown;
    for (const auto& p : patterns) shown += "\n  " + p;
    throw std::runtime_error(where + ": the pre-tokenizer regexes match no known tokenizer.ggml.pre:" + shown);
  }
  return best;
}

bool template_adds_bos(const json& pp) {
  if (!pp.is_object()) return false;
  const std::string type = str(pp, "type");
  if (type == "Sequence" && pp.contains("processors") && pp["processors"].is_array()) {
    for (const json& p : pp["processors"])
      if (template_adds_bos(p)) return true;
    return false;
  }
  if (type != "TemplateProcessing" || !pp.contains("single") || !pp["single"].is_array() || pp["single"].empty()) return false;
  return pp["single"][0].is_object() && pp["single"][0].contains("SpecialToken");
}

TokenizerInfo write_bpe(GgufWriter& w, const std::string& path, const json& tcfg, const HfConfig& c) {
  const json t = read_json(path);
  if (!t.is_object() || !t.contains("model") || !t["model"].is_object()) throw std::runtime_error(path + ": no 'model' object");
  const json& model = t["model"];
  const std::string mtype = str(model, "type");
  if (mtype != "BPE") throw std::runtime_error(path + ": tokenizer model '" + mtype + "' is not supported (supported: BPE)");
  if (t.contains("normalizer") && !t["normalizer"].is_null()) {
    const json& n = t["normalizer"];
    const std::string type = n.is_object() && n.contains("type") && n["type"].is_string() ? n["type"].get<std::string>() : "?";
    if (type != "NFC") throw std::runtime_error(path + ": normalizer '" + type + "' is not supported (supported: none, NFC)");
  }
  std::vector<std::string> patterns;
  bool byte_level = false;
  collect_patterns(t.contains("pre_tokenizer") ? t["pre_tokenizer"] : json(), path, patterns, byte_level);
  if (!byte_level)
    throw std::runtime_error(path + ": only byte-level BPE is supported (a SentencePiece-style tokenizer.json needs its "
                                    "tokenizer.model beside it)");
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw std::runtime_error(path + ": model.vocab is not an object");

  VocabOut v = make_vocab(c.n_vocab);
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer()) throw std::runtime_error(path + ": vocab id of '" + text + "' is not an integer");
    v.place(path, id.get<int64_t>(), text, 0.0f, kNormal, false);
  }
  if (t.contains("added_tokens") && t["added_tokens"].is_array()) {
    for (const json& a : t["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") || !a["content"].is_string())
        throw std::runtime_error(path + ": added_tokens entry without id/content");
      v.place(path, a["id"].get<int64_t>(), a["content"].get<std::string>(), 0.0f, flag(a, "special", false, path) ? kControl : kUserDefined, true);
    }
  }
  place_added_decoder(v, tcfg, path);
  v.pad();

  std::vector<std::string> merges;
  if (!model.contains("merges") || !model["merges"].is_array()) throw std::runtime_error(path + ": model.merges is not an array");
  merges.reserve(model["merges"].size());
  for (const json& m : model["merges"]) {
    if (m.is_string()) merges.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else
      throw std::runtime_error(path + ": a merge is neither \"a b\" nor [\"a\", \"b\"]");
  }
  if (merges.empty()) throw std::runtime_error(path + ": no merges");

  const bool ignore_merges = flag(model, "ignore_merges", false, path);
  const bool clean = tcfg.is_object() && tcfg.contains("clean_up_tokenization_spaces") && tcfg["clean_up_tokenization_spaces"].is_boolean()
                         ? tcfg["clean_up_tokenization_spaces"].get<bool>()
                         : true;
  const std::string pre = choose_pre(patterns, ignore_merges, clean, path);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  write_vocab(w, v, false);
  w.set_strings("tokenizer.ggml.merges", std::move(merges));
  write_specials(w, v, tcfg, c, -1, -1, -1, -1, template_adds_bos(t.contains("post_processor") ? t["post_processor"] : json()), false);
  return {"gpt2", pre};
}

std::string chat_template(const std::string& dir, const json& tcfg) {
  if (tcfg.is_object() && tcfg.contains("chat_template")) {
    const json& ct = tcfg["chat_template"];
    if (ct.is_string()) return ct.get<std::string>();
    if (ct.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const json& e : ct)
        if (str(e, "name") == "default" && e.contains("template") && e["template"].is_string())
          return e["template"].get<std::string>();
      if (!ct.empty() && ct[0].is_object() && ct[0].contains("template") && ct[0]["template"].is_string())
        return ct[0]["template"].get<std::string>();
    }
  }
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) {
    auto map = MappedFile::open(jinja.string());
    auto b = map->bytes();
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }
  return "";
}

}  // namespace

TokenizerInfo write_tokenizer(GgufWriter& w, const std::string& dir, const HfConfig& c) {
  const fs::path root(dir);
  json tcfg = json::object();
  if (fs::exists(root / "tokenizer_config.json")) tcfg = read_json((root / "tokenizer_config.json").string());
  TokenizerInfo info;
  if (fs::exists(root / "tokenizer.model")) info = write_spm(w, (root / "tokenizer.model").string(), tcfg, c);
  else if (fs::exists(root / "tokenizer.json")) info = write_bpe(w, (root / "tokenizer.json").string(), tcfg, c);
  else throw std::runtime_error(dir + ": no tokenizer.model or tokenizer.json");
  if (const std::string ct = chat_template(dir, tcfg); !ct.empty()) w.set_string("tokenizer.chat_template", ct);
  return info;
}

}  // namespace zen::engine::convert
