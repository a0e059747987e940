// Behaviour on the real vocabularies of the reference data: invalid UTF-8, streaming decode of
// characters split across byte-level tokens, special-token parsing, end-of-generation ids.
#include <cstdio>
#include <random>

#include "tests/tokenizer/tokenizer_test_util.h"
#include "engine/chat_template.h"
#include "engine/unicode.h"

namespace zen::test {
namespace {

std::vector<std::filesystem::path> vocab_files() {
  std::vector<std::filesystem::path> out;
  const auto dir = testdata_dir() / "tokenizer";
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ggml-vocab-", 0) == 0 && e.path().extension() == ".gguf") out.push_back(e.path());
  }
  return out;
}

const std::string kInvalid[] = {
    "\xFF", "abc\xC3", "\xE2\x82", "x\xF0\x9F\x98y", "\xC0\xAF", "\xED\xA0\x80 surrogate", "\x80\x80\x80",
    "ok \xF4\x90\x80\x80 too big", std::string("nul\0byte", 8),
};

TEST(RealVocabs, InvalidUtf8NeverThrowsAndDecodesToValidText) {
  const auto files = vocab_files();
  if (files.empty()) GTEST_SKIP() << "tokenizer vectors not found";
  for (const auto& p : files) {
    SCOPED_TRACE(p.filename().string());
    auto t = load_tokenizer(p);
    for (const std::string& s : kInvalid) {
      std::vector<int32_t> ids;
      ASSERT_NO_THROW(t.tok->encode(s, true, true));
      ASSERT_NO_THROW(ids = t.tok->encode(s, false, false));
      for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t.tok->n_vocab());
      engine::StreamDecoder d(*t.tok);
      std::string streamed;
      for (int32_t id : ids) streamed += d.push(id);
      streamed += d.flush();
      EXPECT_TRUE(engine::unicode::is_valid_utf8(streamed));
      if (t.tok->model_type() == "llama") {
        EXPECT_EQ(t.tok->decode(ids), s) << "SentencePiece keeps invalid bytes as byte tokens";
      } else if (t.tok->model_type() == "gpt2" && !t.tok->clean_spaces()) {
        EXPECT_EQ(t.tok->decode(ids), engine::unicode::sanitize_utf8(s)) << "BPE sees U+FFFD for each bad byte";
      }
    }
  }
}

TEST(RealVocabs, RandomBytesAndSpecialTextNeverBreakAnything) {
  const auto files = vocab_files();
  if (files.empty()) GTEST_SKIP() << "tokenizer vectors not found";
  std::mt19937 rng(1234);
  const std::string pieces[] = {" ", "\n", "a", "Z", "9", "'s", "\xC3\xA9", "\xF0\x9F\x98\x81", "\xE4\xBD\xA0",
                                "<s>", "</s>", "<|im_start|>", "<|endoftext|>", "[CLS]", "\xE2\x96\x81", "\t"};
  for (const auto& p : files) {
    SCOPED_TRACE(p.filename().string());
    auto t = load_tokenizer(p);
    for (int iter = 0; iter < 200; ++iter) {
      // Special-token text only in odd iterations: a token cut out of the text makes SPM
      // prefix the next fragment with a space, so only the plain strings must round-trip.
      const bool plain = iter % 2 == 0;
      std::string s;
      const int n = static_cast<int>(rng() % 24);
      for (int k = 0; k < n; ++k) {
        if (rng() % 3 == 0) s.push_back(static_cast<char>(rng() & 0xFF));
        else s += pieces[rng() % (plain ? 9 : std::size(pieces))];
      }
      for (bool special : {false, true}) {
        const auto ids = t.tok->encode(s, special, special);
        for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < t.tok->n_vocab());
        engine::StreamDecoder d(*t.tok, special);
        std::string streamed;
        for (int32_t id : ids) streamed += d.push(id);
        streamed += d.flush();
        ASSERT_TRUE(engine::unicode::is_valid_utf8(streamed));
        if (t.tok->model_type() == "llama" && !special && plain) {
          ASSERT_EQ(t.tok->decode(ids), s);
        }
      }
    }
  }
}

TEST(RealVocabs, StreamDecoderReassemblesCharactersSplitOverTokens) {
  const auto p = testdata_dir() / "tokenizer" / "ggml-vocab-qwen2.gguf";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << "missing " << p;
  auto t = load_tokenizer(p);
  const std::string text = "Hi \xF0\x9F\x98\x81 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\xA6\x99.cpp";  // emoji, CJK, llama
  const auto ids = t.tok->encode(text, false, false);
  bool saw_partial_piece = false;
  engine::StreamDecoder d(*t.tok);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = t.tok->token_to_piece(id);
    if (!engine::unicode::is_valid_utf8(piece)) saw_partial_piece = true;
    const std::string out = d.push(id);
    EXPECT_TRUE(engine::unicode::is_valid_utf8(out)) << "broken bytes streamed for token " << id;
    streamed += out;
  }
  streamed += d.flush();
  EXPECT_TRUE(saw_partial_piece) << "the test text should split a character over tokens";
  EXPECT_EQ(streamed, text);
}

TEST(RealVocabs, ParseSpecialOnAndOff) {
  const auto p = testdata_dir() / "tokenizer" / "ggml-vocab-qwen2.gguf";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << "missing " << p;
  auto t = load_tokenizer(p);
  const int32_t im_start = t.tok->find_token("<|im_start|>"), im_end = t.tok->find_token("<|im_end|>");
  ASSERT_GE(im_start, 0);
  ASSERT_GE(im_end, 0);
  const std::string text = "<|im_start|>user\nHi<|im_end|>";
  const auto on = t.tok->encode(text, false, true);
  ASSERT_GE(on.size(), 3u);
  EXPECT_EQ(on.front(), im_start);
  EXPECT_EQ(on.back(), im_end);
  const auto off = t.tok->encode(text, false, false);
  EXPECT_EQ(std::count(off.begin(), off.end(), im_start), 0);
  EXPECT_EQ(std::count(off.begin(), off.end(), im_end), 0);
  EXPECT_EQ(t.tok->decode(off), text);                  // the markers came out as plain text
  EXPECT_EQ(t.tok->decode(on, true), text);             // rendered back when asked
  EXPECT_EQ(t.tok->decode(on, false), "user\nHi");      // hidden by default
  EXPECT_TRUE(t.tok->is_eog(im_end));
  EXPECT_FALSE(t.tok->is_eog(im_start));
  const auto stops = engine::chat_template_stop_tokens("chatml", *t.tok);
  EXPECT_TRUE(std::binary_search(stops.begin(), stops.end(), im_end));
  EXPECT_FALSE(std::binary_search(stops.begin(), stops.end(), im_start));
}

TEST(RealVocabs, SpmSpecialTokensAndBos) {
  const auto p = testdata_dir() / "tokenizer" / "ggml-vocab-llama-spm.gguf";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << "missing " << p;
  auto t = load_tokenizer(p);
  EXPECT_EQ(t.tok->bos(), 1);
  EXPECT_EQ(t.tok->eos(), 2);
  EXPECT_TRUE(t.tok->add_bos());
  EXPECT_TRUE(t.tok->is_eog(2));
  EXPECT_EQ(t.tok->encode("", true, false), std::vector<int32_t>{1});
  const auto on = t.tok->encode("Hi</s>", true, true);
  EXPECT_EQ(on.front(), 1);
  EXPECT_EQ(on.back(), 2);
  const auto off = t.tok->encode("Hi</s>", true, false);
  EXPECT_EQ(std::count(off.begin(), off.end(), 2), 0);
}

TEST(RealVocabs, DecodeCleansSpacesWhereTheVocabularySaysSo) {
  const auto p = testdata_dir() / "tokenizer" / "ggml-vocab-gpt-2.gguf";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << "missing " << p;
  auto t = load_tokenizer(p);
  ASSERT_TRUE(t.tok->clean_spaces());
  const auto ids = t.tok->encode("Hello , world ? It 's a ' b", false, false);
  EXPECT_EQ(t.tok->decode(ids), "Hello, world? It's a'b");
}

TEST(RealVocabs, WordPieceLowercasesAndStripsAccents) {
  const auto p = testdata_dir() / "tokenizer" / "ggml-vocab-bert-bge.gguf";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << "missing " << p;
  auto t = load_tokenizer(p);
  EXPECT_EQ(t.tok->encode("\xC3\x84PFEL Caf\xC3\xA9", false, false), t.tok->encode("apfel cafe", false, false));
  const auto cls = t.tok->encode("hi", true, false);
  ASSERT_EQ(cls.size(), 3u);
  EXPECT_EQ(t.tok->token_text(cls.front()), "[CLS]");
  EXPECT_EQ(t.tok->token_text(cls.back()), "[SEP]");
  // Punctuation is split off; an uncoverable word is one [UNK].
  const auto unk = t.tok->encode("hi!\xF0\x9F\x9A\x80", false, false);
  ASSERT_EQ(unk.size(), 3u);
  EXPECT_EQ(t.tok->token_text(unk[1]), "\xE2\x96\x81!");  // word-initial pieces carry U+2581
  EXPECT_EQ(t.tok->token_text(unk[2]), "[UNK]");
}

TEST(RealVocabs, VocabOnlyFilesLoadAndReportTypes) {
  for (const auto& p : vocab_files()) {
    auto t = load_tokenizer(p);
    EXPECT_EQ(t.file->gguf().tensors.size(), 0u);
    EXPECT_GT(t.tok->n_vocab(), 1000);
    const std::string& m = t.tok->model_type();
    EXPECT_TRUE(m == "llama" || m == "gpt2" || m == "bert") << m;
  }
}

}  // namespace
}  // namespace zen::test
