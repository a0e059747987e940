// Helpers shared by the tokenizer tests: locating reference data and loading vocabularies.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

namespace zen::test {

inline std::filesystem::path testdata_dir() { return std::filesystem::path(ZEN_TESTDATA_DIR); }

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct LoadedTokenizer {
  std::shared_ptr<engine::GgufModelFile> file;
  std::unique_ptr<engine::Tokenizer> tok;
};

inline LoadedTokenizer load_tokenizer(const std::filesystem::path& p) {
  LoadedTokenizer t;
  t.file = engine::GgufModelFile::open(p.string());
  t.tok = engine::Tokenizer::from_gguf(t.file->gguf());
  return t;
}

}  // namespace zen::test
