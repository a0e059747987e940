#include "engine/vocab_pre.h"

#include <utility>

namespace zen::engine {

namespace {

// The split patterns, as published in each model family's tokenizer.json. Case-insensitive
// contractions are spelled out ('[sS]...) so only ASCII letters fold, as in the reference.
constexpr const char* kContractions = R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))";
constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3Tail = R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Tail = R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen35Tail =
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kCjkHanHangul = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
constexpr const char* kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})"
    R"(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})"
    R"(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})"
    R"(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})"
    R"(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})"
    R"(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})"
    R"(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})"
    R"(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})"
    R"(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})"
    R"(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})"
    R"(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)";
constexpr const char* kDeepseek3Main =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+)"
    R"(| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBloom = R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{0964}\x{06D4}\x{060C})]+)";
constexpr const char* kTekkenLetters =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)";

std::string cat(std::initializer_list<const char*> parts) {
  std::string s;
  for (const char* p : parts) s += p;
  return s;
}

struct Entry {
  std::vector<std::string_view> names;
  BpePreConfig (*make)();
};

BpePreConfig with(std::vector<std::string> patterns, bool clean_spaces = true) {
  BpePreConfig c;
  c.patterns = std::move(patterns);
  c.clean_spaces = clean_spaces;
  return c;
}

const std::vector<Entry>& table() {
  static const std::vector<Entry> t = {
      {{"default", ""},
       [] { return with({R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}); }},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"},
       [] {
         auto c = with({cat({kContractions, kLlama3Tail})});
         c.ignore_merges = true;
         c.force_add_bos = true;
         return c;
       }},
      {{"dbrx", "smaug-bpe"}, [] { return with({cat({kContractions, kLlama3Tail})}); }},
      {{"glm4", "chatglm-bpe"},
       [] {
         auto c = with({cat({kContractions, kLlama3Tail})});
         c.no_bos = true;
         return c;
       }},
      {{"deepseek-llm"},
       [] {
         return with({"[\\r\\n]", kDeepseekLlmLetters,
                      R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)", R"(\s+$)",
                      kCjkHanHangul, R"(\p{N}+)"},
                     false);
       }},
      {{"deepseek-coder"},
       [] { return with({"[\\r\\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHanHangul, R"(\p{N})"}, false); }},
      {{"deepseek-v3", "hunyuan-dense", "joyai-llm"},
       [] {
         return with({R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)", kDeepseek3Main},
                     false);
       }},
      {{"falcon"}, [] { return with({R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}); }},
      {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b"}, [] { return with({R"(\p{N})", kGpt2}); }},
      {{"command-r", "smollm"}, [] { return with({R"(\p{N})", kGpt2}, false); }},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
        "modern-bert", "exaone4", "mpt", "olmo", "jais"},
       [] { return with({kGpt2}); }},
      {{"jina-v1-en", "jina-v2-code", "roberta-bpe"},
       [] {
         auto c = with({kGpt2});
         c.add_sep = true;
         return c;
       }},
      {{"trillion", "granite-docling"}, [] { return with({kGpt2}, false); }},
      {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "hunyuan", "grok-2"},
       [] { return with({cat({kContractions, kQwen2Tail})}, false); }},
      {{"stablelm2"}, [] { return with({cat({kContractions, kQwen2Tail})}); }},
      {{"qwen35"}, [] { return with({cat({kContractions, kQwen35Tail})}, false); }},
      {{"poro-chat"}, [] { return with({kBloom}, false); }},
      {{"bloom", "gpt3-finnish"}, [] { return with({kBloom}); }},
      {{"viking"}, [] { return with({kBloom, R"(\p{N})"}, false); }},
      {{"tekken"},
       [] {
         auto c = with({cat({kTekkenLetters, R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"})}, false);
         c.ignore_merges = true;
         c.force_add_bos = true;
         return c;
       }},
      {{"gpt-4o", "llama4", "kanana2", "minimax-m2"},
       [] {
         const std::string contr = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?";
         return with({std::string(R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)") +
                      contr + R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)" + contr +
                      R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
                     false);
       }},
      {{"bailingmoe", "bailingmoe2", "llada-moe"},
       [] {
         return with({R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
                      R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"},
                     false);
       }},
      {{"seed-coder"},
       [] {
         return with({cat({kContractions, R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)"})},
                     false);
       }},
      {{"superbpe"}, [] { return with({R"(\p{N}+)", R"((?=(\d{3})+(?!\d)))"}, false); }},
      {{"gemma4", "granite-embed-multi-311m"},
       [] {
         // SentencePiece-style BPE: spaces become U+2581, merges run on whole lines of raw
         // UTF-8 (no byte-level mapping), unknown pieces fall back to <0xXX> byte tokens.
         auto c = with({R"([^\n]+|[\n]+)"});
         c.escape_whitespaces = true;
         c.byte_encode = false;
         c.always_add_bos = true;
         return c;
       }},
  };
  return t;
}

}  // namespace

std::optional<BpePreConfig> bpe_pre_config(std::string_view pre) {
  for (const Entry& e : table()) {
    for (std::string_view n : e.names) {
      if (n == pre) return e.make();
    }
  }
  return std::nullopt;
}

std::string supported_bpe_pre_names() {
  std::string s;
  for (const Entry& e : table()) {
    for (std::string_view n : e.names) {
      if (n.empty()) continue;
      if (!s.empty()) s += ", ";
      s += n;
    }
  }
  return s;
}

}  // namespace zen::engine
