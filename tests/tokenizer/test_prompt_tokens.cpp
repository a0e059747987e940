// The prompts of the reference logits tokenize to llama.cpp's ids (with BOS, special text not
// parsed), and each id's piece has the bytes llama.cpp printed for it.
#include <nlohmann/json.hpp>

#include "tests/tokenizer/tokenizer_test_util.h"

namespace zen::test {
namespace {

std::string hex_of(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h.push_back(d[c >> 4]);
    h.push_back(d[c & 15]);
  }
  return h;
}

TEST(PromptTokens, MatchReferenceIds) {
  const auto dir = testdata_dir() / "logits";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "reference data not found at " << dir;
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.size() < 19 || name.substr(name.size() - 19) != ".prompt.tokens.json") continue;
    const auto j = nlohmann::json::parse(read_file(e.path()));
    if (!j.contains("prompt")) continue;
    const auto model = testdata_dir() / "models" / j["model"].get<std::string>();
    if (!std::filesystem::exists(model)) continue;
    SCOPED_TRACE(name);
    auto t = load_tokenizer(model);
    const auto ids = t.tok->encode(j["prompt"].get<std::string>(), /*add_special=*/true, /*parse_special=*/false);
    EXPECT_EQ(ids, j["tokens"].get<std::vector<int32_t>>());
    const auto hex = j["pieces_hex"].get<std::vector<std::string>>();
    ASSERT_EQ(ids.size(), hex.size());
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(hex_of(t.tok->token_to_piece(ids[i])), hex[i]) << "token " << i;
    ++checked;
  }
  EXPECT_GE(checked, 2) << "expected the stories260K and llama-2-tiny-random prompts";
}

TEST(PromptTokens, SynthPatternPiecesMatchReference) {
  // Every id of the synthetic pattern (byte tokens included) renders to llama.cpp's bytes.
  const auto json = testdata_dir() / "logits" / "synth.pattern64.tokens.json";
  const auto model = testdata_dir() / "models" / "stories260K.gguf";
  if (!std::filesystem::exists(json) || !std::filesystem::exists(model)) GTEST_SKIP() << "reference data not found";
  const auto j = nlohmann::json::parse(read_file(json));
  auto t = load_tokenizer(model);
  const auto ids = j["tokens"].get<std::vector<int32_t>>();
  const auto hex = j["pieces_hex"].get<std::vector<std::string>>();
  ASSERT_EQ(ids.size(), hex.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(hex_of(t.tok->token_to_piece(ids[i])), hex[i]) << "id " << ids[i];
}

}  // namespace
}  // namespace zen::test
