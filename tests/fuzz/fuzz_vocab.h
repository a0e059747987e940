// Small synthetic vocabularies (SPM and byte-level BPE) as GGUF bytes, shared by the
// tokenizer fuzz target and the seed-corpus generator. Every byte is encodable in both.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "engine/gguf_writer.h"

namespace zen::engine::fuzz {

// SentencePiece: control tokens, the 256 byte tokens, some pieces and a user-defined tag.
inline GgufWriter spm_vocab() {
  std::vector<std::string> tok = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> type = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tok.emplace_back(buf);
    type.push_back(6);
  }
  const std::vector<std::string> pieces = {"\xE2\x96\x81", "a", "b", "c", "ab", "bc", "\xE2\x96\x81" "a",
                                           "\xC3\xA9", "\xE2\x96\x81\xE2\x96\x81", "<tag>"};
  std::vector<float> scores(tok.size(), 0.0f);
  for (size_t i = 0; i < pieces.size(); ++i) {
    tok.push_back(pieces[i]);
    scores.push_back(-static_cast<float>(i % 5) - 1.0f);
    type.push_back(pieces[i] == "<tag>" ? 4 : 1);
  }
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_strings("tokenizer.ggml.tokens", tok);
  w.set_f32s("tokenizer.ggml.scores", scores);
  w.set_i32s("tokenizer.ggml.token_type", type);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  return w;
}

// The printable character GPT-2's byte-level BPE uses for byte b, as UTF-8.
inline std::string byte_level_char(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;  // the non-printable bytes take code points 256, 257, ... in byte order
    for (int x = 0; x < b; ++x)
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Byte-level BPE: all 256 byte characters, a few merges, control tokens. `pre` picks the
// pre-tokenizer regexes (tokenizer.ggml.pre).
inline GgufWriter bpe_vocab(const std::string& pre) {
  std::vector<std::string> tok;
  std::vector<int32_t> type;
  for (int b = 0; b < 256; ++b) {
    tok.push_back(byte_level_char(b));
    type.push_back(1);
  }
  const std::string sp = byte_level_char(' ');
  const std::vector<std::string> merged = {"ab", "bc", "abc", sp + "a", sp + "the", "th", "the", "12"};
  for (const auto& m : merged) {
    tok.push_back(m);
    type.push_back(1);
  }
  for (const char* c : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tok.emplace_back(c);
    type.push_back(3);
  }
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_strings("tokenizer.ggml.tokens", tok);
  w.set_i32s("tokenizer.ggml.token_type", type);
  w.set_strings("tokenizer.ggml.merges", {"a b", "b c", "a bc", sp + " a", "t h", "th e", sp + " the", "1 2"});
  w.set_u32("tokenizer.ggml.eos_token_id", 256 + static_cast<uint32_t>(merged.size()));
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  return w;
}

}  // namespace zen::engine::fuzz
