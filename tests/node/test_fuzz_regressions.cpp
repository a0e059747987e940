// Inputs the fuzz targets (tests/fuzz) found, kept as regular tests.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "node/config.h"
#include "node/http_api_json.h"

namespace zen::test {
namespace {

// Just enough of a service for parse_request: a three-token SPM vocabulary.
class TinyService final : public node::InferenceService {
 public:
  TinyService() {
    engine::GgufWriter w;
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_strings("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xE2\x96\x81" "hi"});
    w.set_f32s("tokenizer.ggml.scores", {0, 0, 0, -1});
    w.set_i32s("tokenizer.ggml.token_type", {2, 3, 3, 1});
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    const auto bytes = w.to_bytes();
    tok_ = engine::Tokenizer::from_gguf(engine::GgufFile::parse(bytes, "tiny.gguf"));
  }
  const engine::Tokenizer& tokenizer() const override { return *tok_; }
  std::string model_name() const override { return "tiny"; }
  std::string chat_template() const override { return "chatml"; }
  int n_ctx() const override { return 64; }
  uint64_t submit(node::CompletionRequest, std::function<bool(const node::TokenEvent&)>) override { return 0; }
  void cancel(uint64_t) override {}
  nlohmann::json cluster_info() const override { return nlohmann::json::object(); }

 private:
  std::unique_ptr<engine::Tokenizer> tok_;
};

// fuzz_http_json: a number too large for a double ("11e1112000") made the JSON library throw
// out_of_range, which escaped parse_request instead of becoming a 400 invalid_json.
TEST(FuzzRegressions, HttpBodyWithOverflowingNumberIsA400) {
  const TinyService svc;
  for (const char* body : {R"({"prompt": "hi", "max_tokens": 11e1112000})", R"({"prompt": "hi", "temperature": -1e999})",
                           R"([1e400])"}) {
    for (auto ep : {node::api::Endpoint::completions, node::api::Endpoint::chat}) {
      try {
        (void)node::api::parse_request(body, ep, svc, engine::SamplerParams{}, 1);
        ADD_FAILURE() << "accepted: " << body;
      } catch (const node::api::ApiError& e) {
        EXPECT_EQ(e.status(), 400) << body;
        EXPECT_EQ(e.code(), "invalid_json") << body;
      }
    }
  }
  // The same request with an ordinary number still parses.
  const auto ok = node::api::parse_request(R"({"prompt": "hi", "max_tokens": 3})", node::api::Endpoint::completions,
                                           svc, engine::SamplerParams{}, 1);
  EXPECT_EQ(ok.req.max_tokens, 3);
  EXPECT_FALSE(ok.req.prompt.empty());
}

// fuzz_config: toml++ 3.3.0 reaches __builtin_unreachable() (UBSan: "execution reached an
// unreachable program point") when it checks some non-ASCII characters outside strings for
// whitespace (U+01FD, U+FE7F and U+FEEF were the inputs). parse_config refuses non-ASCII outside
// strings and comments (TOML does not allow it there) before toml++ sees the text.
TEST(FuzzRegressions, ConfigNonAsciiOutsideStringsIsAConfigError) {
  for (const char* text : {"role = \"worker\"\n\xC7\xBD = 1\n", "role = \"worker\"\n\xEF\xB9\xBFmodel = \"m\"\n",
                           "name = \"w\" \xC2\xA0\n", "\xC3\xA9 = 1\n",
                           // a quote inside a bare token does not open a string (toml++ reads on)
                           "name = 0%\".\xEF\xBB\xAF" "0\"\n",
                           // after a line-ending backslash toml++ skips whitespace
                           "name = \"\"\"r\\\n\xEF\xB9\xBF\"\"\"\n", "name = \"a\\\xC7\xBD\"\n"}) {
    try {
      (void)node::parse_config(text, "fuzz.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const node::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("non-ASCII"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("fuzz.toml:"), std::string::npos) << e.what();
    }
  }
  // Non-ASCII inside strings (every kind) and comments is fine.
  const auto c = node::parse_config(
      "# caf\xC3\xA9 \xEF\xB9\xBF\nname = \"caf\xC3\xA9\\\"\xC7\xBD\" # \xC7\xBD\n"
      "api_keys = ['\xC7\xBD', \"\"\"\n\xEF\xB9\xBF\"\"\"\", '''\xC2\xA0''']\n",
      "ok.toml");
  EXPECT_EQ(c.name, "caf\xC3\xA9\"\xC7\xBD");
  ASSERT_EQ(c.api_keys.size(), 3u);
  EXPECT_EQ(c.api_keys[1], "\xEF\xB9\xBF\"");
}

}  // namespace
}  // namespace zen::test
