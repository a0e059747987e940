// Single-sequence generation on one Context: prompt as one batch, then one token at a time.
// Used by `zen run`, `zen chat` and the benchmarks; the cluster uses the same Context calls
// stage by stage.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/forward.h"
#include "engine/sampler.h"

namespace zen::engine {

struct GenerateParams {
  int n_predict = 128;        // tokens to generate at most (<0: until end of context)
  SamplerParams sampler;
  std::function<bool(int32_t)> is_stop;  // end-of-generation test (may be empty)
};

struct GenerateStats {
  int n_prompt = 0;
  int n_generated = 0;
  double prompt_ms = 0;
  double gen_ms = 0;  // from the first generated token's logits to the last token
};

// Appends `prompt` to sequence `seq` (continuing after what its cache holds), then samples
// tokens. on_token is called for every generated token; returning false stops. A stop token
// is reported to on_token and ends the generation. Returns the generated ids.
std::vector<int32_t> generate(Context& ctx, int32_t seq, std::span<const int32_t> prompt, const GenerateParams& params,
                              const std::function<bool(int32_t)>& on_token, GenerateStats* stats = nullptr,
                              std::vector<int32_t>* history = nullptr);

}  // namespace zen::engine
