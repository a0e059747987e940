// zen tokenize -m MODEL -p TEXT [--ids-only] [--no-bos] [--no-parse-special]
// Prints each token id and its piece, one per line, or with --ids-only the ids on one line.
// Needs only the vocabulary: a vocab-only GGUF (0 tensors) works.
#include <cstdio>
#include <memory>
#include <string>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "node/cli.h"

namespace zen::cli {

namespace {

struct TokenizeOptions {
  std::string model, prompt;
  bool ids_only = false, no_bos = false, no_parse_special = false;
};

void tokenize(const TokenizeOptions& o) {
  auto file = engine::GgufModelFile::open(o.model);
  auto tok = engine::Tokenizer::from_gguf(file->gguf());
  const auto ids = tok->encode(o.prompt, /*add_special=*/!o.no_bos, /*parse_special=*/!o.no_parse_special);
  if (o.ids_only) {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line.append(i ? " " : "").append(std::to_string(ids[i]));
    std::printf("%s\n", line.c_str());
    return;
  }
  for (int32_t id : ids) {
    const std::string piece = tok->token_to_piece(id, /*render_special=*/true);
    std::printf("%6d -> '%.*s'\n", id, static_cast<int>(piece.size()), piece.data());
  }
}

}  // namespace

void add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print the token ids (and pieces) of a text");
  cmd->add_option("-m,--model", o->model, "GGUF model or vocabulary file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-p,--prompt", o->prompt, "text to tokenize")->required();
  cmd->add_flag("--ids-only", o->ids_only, "print only the ids, space-separated on one line");
  cmd->add_flag("--no-bos", o->no_bos, "do not add BOS/EOS even where the model asks for them");
  cmd->add_flag("--no-parse-special", o->no_parse_special, "treat special-token text as plain text");
  cmd->callback([o] { tokenize(*o); });
}

}  // namespace zen::cli
