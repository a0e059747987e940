// Fuzzes the OpenAI-compatible request-body parser (node/http_api_json.h) on arbitrary
// bytes, for both endpoints, against a fake service with a small BPE tokenizer and the
// chatml template. A refusal must be an ApiError with a 4xx status and a message.
#include <cstdlib>
#include <memory>
#include <string_view>

#include "engine/gguf.h"
#include "node/http_api_json.h"
#include "tests/fuzz/fuzz_vocab.h"

namespace {

using namespace zen;

class FakeService final : public node::InferenceService {
 public:
  FakeService() {
    const auto bytes = engine::fuzz::bpe_vocab("gpt-2").to_bytes();
    tok_ = engine::Tokenizer::from_gguf(engine::GgufFile::parse(bytes, "fuzz-vocab.gguf"));
  }
  const engine::Tokenizer& tokenizer() const override { return *tok_; }
  std::string model_name() const override { return "fuzz"; }
  std::string chat_template() const override { return "chatml"; }
  int n_ctx() const override { return 256; }
  uint64_t submit(node::CompletionRequest, std::function<bool(const node::TokenEvent&)>) override { return 0; }
  void cancel(uint64_t) override {}
  nlohmann::json cluster_info() const override { return nlohmann::json::object(); }

 private:
  std::unique_ptr<engine::Tokenizer> tok_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FakeService svc;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (auto ep : {node::api::Endpoint::completions, node::api::Endpoint::chat}) {
    try {
      const auto r = node::api::parse_request(body, ep, svc, engine::SamplerParams{}, 42);
      for (int32_t id : r.req.prompt)
        if (id < 0 || id >= svc.tokenizer().n_vocab()) std::abort();
    } catch (const node::api::ApiError& e) {
      if (e.status() < 400 || e.status() >= 500 || std::string_view(e.what()).empty()) std::abort();
    }
  }
  return 0;
}
