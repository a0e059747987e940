#include "engine/generate.h"

#include <chrono>
#include <stdexcept>

namespace zen::engine {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::vector<int32_t> generate(Context& ctx, int32_t seq, std::span<const int32_t> prompt, const GenerateParams& params,
                              const std::function<bool(int32_t)>& on_token, GenerateStats* stats,
                              std::vector<int32_t>* history) {
  if (prompt.empty()) throw std::invalid_argument("empty prompt");
  const int32_t start = ctx.seq_len(seq);
  if (start + static_cast<int64_t>(prompt.size()) > ctx.n_ctx())
    throw std::length_error("prompt of " + std::to_string(prompt.size()) + " tokens does not fit the context of " +
                            std::to_string(ctx.n_ctx()) + " (" + std::to_string(start) + " already used)");
  std::vector<int32_t> local_history;
  std::vector<int32_t>& hist = history ? *history : local_history;
  hist.insert(hist.end(), prompt.begin(), prompt.end());

  std::vector<BatchRow> rows(prompt.size());
  for (size_t i = 0; i < prompt.size(); ++i)
    rows[i] = {seq, start + static_cast<int32_t>(i), prompt[i], i + 1 == prompt.size()};
  std::vector<float> logits;
  auto t0 = std::chrono::steady_clock::now();
  ctx.forward(rows, nullptr, logits);
  if (stats) {
    stats->n_prompt += static_cast<int>(prompt.size());
    stats->prompt_ms += ms_since(t0);
  }

  Sampler sampler(params.sampler);
  std::vector<int32_t> out;
  const int limit = params.n_predict < 0 ? ctx.n_ctx() : params.n_predict;
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < limit; ++i) {
    const int32_t tok = sampler.sample(logits, hist);
    out.push_back(tok);
    hist.push_back(tok);
    const bool stop = params.is_stop && params.is_stop(tok);
    const bool go_on = on_token ? on_token(tok) : true;
    if (stop || !go_on || i + 1 == limit) break;
    const int32_t pos = ctx.seq_len(seq);
    if (pos >= ctx.n_ctx()) break;  // context full
    BatchRow r{seq, pos, tok, true};
    ctx.forward(std::span<const BatchRow>(&r, 1), nullptr, logits);
  }
  if (stats) {
    stats->n_generated += static_cast<int>(out.size());
    stats->gen_ms += ms_since(t1);
  }
  return out;
}

}  // namespace zen::engine
