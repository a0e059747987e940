// llama.cpp's tokenizer test vectors: every ggml-vocab-*.gguf found in the tokenizer folder
// (whatever its name) must encode each .inp string to the ids in .out (no BOS, special text not
// parsed), and decode back to the input wherever the vocabulary's decoder is lossless.
#include <cstdlib>
#include <vector>

#include "tests/tokenizer/tokenizer_test_util.h"

namespace zen::test {
namespace {

std::vector<std::string> split_tests(const std::string& inp) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size()) {
    out.push_back(inp.substr(pos, hit - pos));
  }
  if (pos < inp.size()) out.push_back(inp.substr(pos));  // text after the last separator
  return out;
}

std::vector<std::vector<int32_t>> parse_out(const std::string& text) {
  std::vector<std::vector<int32_t>> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (long v; ls >> v;) ids.push_back(static_cast<int32_t>(v));
    lines.push_back(std::move(ids));
  }
  return lines;
}

// Whether decoding cannot give the input back by construction: WordPiece lowercases and strips
// accents, and the clean-up of spaces before punctuation changes " ?", " 's" and the like.
bool lossy_for(const engine::Tokenizer& tok, const std::string& s) {
  if (tok.model_type() == "bert") return true;
  if (!tok.clean_spaces()) return false;
  for (const char* p : {" ?", " !", " .", " ,", " '"}) {
    if (s.find(p) != std::string::npos) return true;
  }
  return false;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t id : v) s.append(" ").append(std::to_string(id));
  return s;
}

TEST(VocabVectors, EveryVocabularyInTheFolder) {
  const auto dir = testdata_dir() / "tokenizer";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "tokenizer vectors not found at " << dir;
  int vocabs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ggml-vocab-", 0) != 0 || e.path().extension() != ".gguf") continue;
    const auto inp = e.path().string() + ".inp", outp = e.path().string() + ".out";
    if (!std::filesystem::exists(inp) || !std::filesystem::exists(outp)) continue;
    SCOPED_TRACE(name);
    auto t = load_tokenizer(e.path());
    const auto tests = split_tests(read_file(inp));
    const auto expected = parse_out(read_file(outp));
    ASSERT_EQ(tests.size(), expected.size()) << "test strings vs expected lines";
    int failures = 0, round_trips = 0;
    for (size_t i = 0; i < tests.size(); ++i) {
      const auto ids = t.tok->encode(tests[i], /*add_special=*/false, /*parse_special=*/false);
      if (ids != expected[i]) {
        ++failures;
        ADD_FAILURE() << name << " test " << i << " '" << tests[i] << "'\n  got     " << show(ids)
                      << "\n  expected" << show(expected[i]);
        continue;
      }
      if (!lossy_for(*t.tok, tests[i])) {
        EXPECT_EQ(t.tok->decode(ids), tests[i]) << name << " test " << i << " does not round-trip";
        ++round_trips;
      }
    }
    std::printf("  %-36s %s/%s  %zu tests, %d failed, %d round-trips checked\n", name.c_str(),
                t.tok->model_type().c_str(), t.tok->pre_type().c_str(), tests.size(), failures, round_trips);
    ++vocabs;
  }
  EXPECT_GT(vocabs, 0) << "no ggml-vocab-*.gguf with .inp/.out found in " << dir;
}

}  // namespace
}  // namespace zen::test
