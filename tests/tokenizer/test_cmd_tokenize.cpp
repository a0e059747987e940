// `zen tokenize` end to end on vocab-only GGUFs (0 tensors): ids, pieces, --ids-only, --no-bos.
// Runs the built `zen` binary; skipped when it has not been built.
#include <cstdio>
#include <memory>

#include "tests/tokenizer/tokenizer_test_util.h"

namespace zen::test {
namespace {

std::filesystem::path zen_binary() { return std::filesystem::path(ZEN_BINARY_DIR) / "bin" / "zen"; }

std::string run(const std::string& cmd, int* status) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p.get())) > 0;) out.append(buf, n);
  *status = pclose(p.release());
  return out;
}

std::string join(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s.append(i ? " " : "").append(std::to_string(ids[i]));
  return s + "\n";
}

TEST(CmdTokenize, VocabOnlyFiles) {
  if (!std::filesystem::exists(zen_binary())) GTEST_SKIP() << "zen binary not built at " << zen_binary();
  const auto dir = testdata_dir() / "tokenizer";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "tokenizer vectors not found";
  for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-qwen2.gguf", "ggml-vocab-bert-bge.gguf"}) {
    const auto vocab = dir / name;
    if (!std::filesystem::exists(vocab)) continue;
    SCOPED_TRACE(name);
    auto t = load_tokenizer(vocab);
    const std::string text = "Hello world, it's 2026!";
    int st = 0;
    const std::string base = zen_binary().string() + " tokenize -m '" + vocab.string() + "' -p \"" + text + "\"";
    EXPECT_EQ(run(base + " --ids-only", &st), join(t.tok->encode(text, true, true)));
    EXPECT_EQ(st, 0);
    EXPECT_EQ(run(base + " --ids-only --no-bos", &st), join(t.tok->encode(text, false, true)));
    const auto ids = t.tok->encode(text, true, true);
    std::string expected;
    for (int32_t id : ids) {
      char line[64];
      std::snprintf(line, sizeof line, "%6d -> '", id);
      expected += line + t.tok->token_to_piece(id) + "'\n";
    }
    EXPECT_EQ(run(base, &st), expected);
  }
}

TEST(CmdTokenize, MissingFileIsAnError) {
  if (!std::filesystem::exists(zen_binary())) GTEST_SKIP() << "zen binary not built at " << zen_binary();
  int st = 0;
  run(zen_binary().string() + " tokenize -m /nonexistent.gguf -p hi 2>/dev/null", &st);
  EXPECT_NE(st, 0);
}

}  // namespace
}  // namespace zen::test
