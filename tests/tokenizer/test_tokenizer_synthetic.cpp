// Tokenizer behaviour on small vocabularies written here (no reference data needed): merge
// order, byte fallback, BOS/EOS rules from metadata, special-token parsing, clear errors.
#include <gtest/gtest.h>

#include <stdexcept>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/tokenizer.h"

namespace zen::test {
namespace {

using engine::GgufFile;
using engine::GgufWriter;
using engine::Tokenizer;

GgufFile parse(const GgufWriter& w) {
  static std::vector<std::vector<std::byte>> keep;  // GgufFile copies what it needs; keep bytes anyway
  keep.push_back(w.to_bytes());
  return GgufFile::parse(keep.back(), "synthetic.gguf");
}

// A SentencePiece vocabulary: control tokens, the 256 byte tokens, and a few pieces whose
// scores decide the merge order.
GgufWriter spm_writer() {
  std::vector<std::string> tok = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> type = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tok.emplace_back(buf);
    type.push_back(6);
  }
  const std::vector<std::string> pieces = {"\xE2\x96\x81", "a", "b", "c", "ab", "bc", "\xE2\x96\x81" "a", "<tag>"};
  const std::vector<float> piece_scores = {-1, -2, -2, -2, -5, -1, -3, 0};
  std::vector<float> scores(tok.size(), 0.0f);
  for (size_t i = 0; i < pieces.size(); ++i) {
    tok.push_back(pieces[i]);
    scores.push_back(piece_scores[i]);
    type.push_back(pieces[i] == "<tag>" ? 4 : 1);  // <tag> is user-defined
  }
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_strings("tokenizer.ggml.tokens", tok);
  w.set_f32s("tokenizer.ggml.scores", scores);
  w.set_i32s("tokenizer.ggml.token_type", type);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  return w;
}

int32_t id_of(const Tokenizer& t, const std::string& s) {
  const int32_t id = t.find_token(s);
  EXPECT_GE(id, 0) << s;
  return id;
}

TEST(SyntheticSpm, HighestScoreMergesFirstAndBytesFallBack) {
  auto t = Tokenizer::from_gguf(parse(spm_writer()));
  EXPECT_EQ(t->model_type(), "llama");
  EXPECT_TRUE(t->add_bos());
  // "abc" -> "▁abc": "bc" (-1) beats "ab" (-5) and "▁a" (-3), so the pieces are ▁a + bc.
  const auto ids = t->encode("abc", false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{id_of(*t, "\xE2\x96\x81" "a"), id_of(*t, "bc")}));
  EXPECT_EQ(t->decode(ids), "abc");
  // 'z' is no token: it becomes its byte token; with BOS in front.
  const auto z = t->encode("z", true, false);
  EXPECT_EQ(z, (std::vector<int32_t>{1, id_of(*t, "\xE2\x96\x81"), 3 + 'z'}));
  EXPECT_EQ(t->decode(std::span(z).subspan(1)), "z");
  EXPECT_EQ(t->decode(z), " z");  // as llama.cpp: only the very first piece loses its space
  EXPECT_EQ(t->encode("", true, false), std::vector<int32_t>{1});
  EXPECT_TRUE(t->encode("", false, false).empty());
}

TEST(SyntheticSpm, SpecialTextOnlyWithParseSpecialButUserDefinedAlways) {
  auto t = Tokenizer::from_gguf(parse(spm_writer()));
  const auto with = t->encode("a</s>", false, true);
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with.back(), 2);
  const auto without = t->encode("a</s>", false, false);
  EXPECT_EQ(std::count(without.begin(), without.end(), 2), 0);
  EXPECT_EQ(t->decode(without), "a</s>");
  // A user-defined token is cut out of the text even without parse_special.
  const auto tag = t->encode("a<tag>", false, false);
  EXPECT_EQ(tag.back(), id_of(*t, "<tag>"));
  EXPECT_EQ(t->token_to_piece(2, false), "");
  EXPECT_EQ(t->token_to_piece(2, true), "</s>");
}

TEST(SyntheticSpm, MetadataControlsBosEosAndSpacePrefix) {
  auto w = spm_writer();
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_eos_token", true);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  auto t = Tokenizer::from_gguf(parse(w));
  const auto ids = t->encode("a", true, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{id_of(*t, "a"), 2}));
  EXPECT_TRUE(t->is_eog(2));
}

TEST(SyntheticSpm, InvalidUtf8KeepsItsBytes) {
  auto t = Tokenizer::from_gguf(parse(spm_writer()));
  const std::string bad = "a\xC3(\xFF\xE2\x82";  // truncated 2-byte, stray 0xFF, truncated 3-byte
  std::vector<int32_t> ids;
  ASSERT_NO_THROW(ids = t->encode(bad, false, false));
  EXPECT_EQ(t->decode(ids), bad);  // every byte survives as a byte token
}

GgufWriter bpe_writer(const std::string& pre) {
  // Byte-level tokens (\u0120 is the space byte) and merges where rank, not position, decides.
  const std::vector<std::string> tok = {"a", "b", "c", "ab", "bc", "abc", "\xC4\xA0", "\xC4\xA0" "a", "<|end|>", "!"};
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", pre);
  w.set_strings("tokenizer.ggml.tokens", tok);
  w.set_i32s("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 1, 1, 3, 1});
  w.set_strings("tokenizer.ggml.merges", {"b c", "a b", "a bc", "\xC4\xA0 a"});
  w.set_u32("tokenizer.ggml.eos_token_id", 8);
  return w;
}

TEST(SyntheticBpe, MergesFollowRankOrder) {
  auto t = Tokenizer::from_gguf(parse(bpe_writer("gpt-2")));
  // (b c) has rank 0, so "abc" -> a + bc -> abc; merging (a b) first would strand "c".
  EXPECT_EQ(t->encode("abc", false, false), std::vector<int32_t>{5});
  EXPECT_EQ(t->encode("ab", false, false), std::vector<int32_t>{3});
  // " a" is one pre-token (" ?\p{L}+") and merges to "Ġa"; "!" is its own pre-token.
  EXPECT_EQ(t->encode(" a!", false, false), (std::vector<int32_t>{7, 9}));
  EXPECT_EQ(t->decode(std::vector<int32_t>{7, 5}), " aabc");
  EXPECT_TRUE(t->is_eog(8));
  EXPECT_FALSE(t->add_bos());
}

TEST(SyntheticBpe, ControlTokenParsedOnlyOnRequest) {
  auto t = Tokenizer::from_gguf(parse(bpe_writer("qwen2")));
  EXPECT_EQ(t->encode("a<|end|>", false, true), (std::vector<int32_t>{0, 8}));
  const auto plain = t->encode("a<|end|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 8), 0);
}

TEST(SyntheticBpe, InvalidUtf8DoesNotThrow) {
  auto t = Tokenizer::from_gguf(parse(bpe_writer("llama-bpe")));
  for (const std::string s : {"\xFF", "ab\xC3", "\xE2\x82", "\xF0\x9F\x98", "\xC0\xAF", "\xED\xA0\x80"}) {
    EXPECT_NO_THROW(t->encode(s, true, true)) << s.size();
  }
}

TEST(SyntheticBpe, SentencePieceStyleBpeOfGemma4) {
  // tokenizer.ggml.model = gemma4: spaces become U+2581, merges run over raw UTF-8 characters,
  // newline runs are pieces of their own, unknown pieces fall back to <0xXX> byte tokens.
  std::vector<std::string> tok = {"<bos>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a"};
  std::vector<int32_t> type = {3, 1, 1, 1, 1};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tok.emplace_back(buf);
    type.push_back(6);
  }
  GgufWriter w;
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_strings("tokenizer.ggml.tokens", tok);
  w.set_i32s("tokenizer.ggml.token_type", type);
  w.set_strings("tokenizer.ggml.merges", {"\xE2\x96\x81 a"});
  w.set_u32("tokenizer.ggml.bos_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", false);  // Gemma 4 adds BOS regardless
  auto t = Tokenizer::from_gguf(parse(w));
  const int32_t nl = 5 + '\n';
  const auto ids = t->encode(" a b\n\n", true, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 4, 1, 3, nl, nl}));
  EXPECT_EQ(t->decode(std::span(ids).subspan(1)), " a b\n\n");
}

TEST(SyntheticErrors, UnsupportedModelAndPreAreClear) {
  auto w = spm_writer();
  w.set_string("tokenizer.ggml.model", "t5");
  try {
    Tokenizer::from_gguf(parse(w));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'t5'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("llama"), std::string::npos) << e.what();
  }
  try {
    Tokenizer::from_gguf(parse(bpe_writer("no-such-pre")));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-pre"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("qwen2"), std::string::npos) << e.what();
  }
  auto nomerge = bpe_writer("gpt-2");
  nomerge.remove("tokenizer.ggml.merges");
  EXPECT_THROW(Tokenizer::from_gguf(parse(nomerge)), std::runtime_error);
  GgufWriter empty;
  EXPECT_THROW(Tokenizer::from_gguf(parse(empty)), std::runtime_error);
}

TEST(StreamDecoder, HoldsBackSplitCharacters) {
  auto t = Tokenizer::from_gguf(parse(spm_writer()));
  const auto byte_id = [](uint8_t b) { return 3 + b; };
  engine::StreamDecoder d(*t);
  // "é" (C3 A9) then the 4-byte "😀" (F0 9F 98 80), one byte token at a time.
  EXPECT_EQ(d.push(byte_id(0xC3)), "");
  EXPECT_EQ(d.push(byte_id(0xA9)), "\xC3\xA9");
  EXPECT_EQ(d.push(byte_id(0xF0)), "");
  EXPECT_EQ(d.push(byte_id(0x9F)), "");
  EXPECT_EQ(d.push(byte_id(0x98)), "");
  EXPECT_EQ(d.push(byte_id(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(d.push(id_of(*t, "ab")), "ab");
  // A character that never completes becomes U+FFFD, not broken bytes.
  EXPECT_EQ(d.push(byte_id(0xE2)), "");
  EXPECT_EQ(d.push(id_of(*t, "a")), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(d.push(byte_id(0xE2)), "");
  EXPECT_EQ(d.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(d.push(2), "");  // control tokens are not rendered by default
}

}  // namespace
}  // namespace zen::test
