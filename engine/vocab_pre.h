// BPE pre-tokenizer configurations selected by tokenizer.ggml.pre: the split regexes (the
// Hugging Face tokenizer.json pre_tokenizer patterns) and the flags that go with each.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zen::engine {

struct BpePreConfig {
  std::vector<std::string> patterns;
  bool clean_spaces = true;
  bool ignore_merges = false;
  bool force_add_bos = false;  // add BOS unless the metadata says otherwise
  bool always_add_bos = false; // add BOS even when the metadata says not to
  bool add_sep = false;
  bool no_bos = false;         // the tokenizer has no BOS token at all
  bool escape_whitespaces = false;
  bool byte_encode = true;
};

// nullopt for an unknown name. "" and "default" give the default configuration.
std::optional<BpePreConfig> bpe_pre_config(std::string_view pre);
// Every accepted tokenizer.ggml.pre value, for error messages.
std::string supported_bpe_pre_names();

}  // namespace zen::engine
