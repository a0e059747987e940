// Stage runners chained in-process through the wire codec (every message encoded to bytes and
// decoded again, as between two nodes), for the stage tests.
#pragma once
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/model.h"
#include "node/stage.h"
#include "transport/codec.h"

namespace zen::node::testing {

// Round trip through the wire format.
template <typename T>
T over_the_wire(const T& m) {
  const auto bytes = transport::encode(transport::Message{m});
  auto decoded = transport::decode(bytes);
  if (!decoded.message) throw std::runtime_error("decode failed: " + decoded.error);
  return std::get<T>(*decoded.message);
}

struct Pipeline {
  std::vector<std::unique_ptr<StageRunner>> stages;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<transport::SampledTokens> results;

  Pipeline(const std::string& path, const std::vector<int>& bounds, transport::DType act, int n_ctx = 64,
           const std::function<void(StageOptions&)>& tweak = {}) {
    auto file = engine::GgufModelFile::open(path);
    const size_t n = bounds.size() - 1;
    stages.resize(n);
    for (size_t i = n; i-- > 0;) {  // last first, so each stage can hand on to the next
      engine::SliceSpec spec{bounds[i], bounds[i + 1], i == 0, i + 1 == n};
      StageOptions so;
      so.context.n_ctx = n_ctx;
      so.context.n_threads = 2;
      so.activation = act;
      so.return_logits = true;
      so.n_stages = static_cast<int>(n);
      if (tweak) tweak(so);
      StageRunner* next = i + 1 < n ? stages[i + 1].get() : nullptr;
      stages[i] = std::make_unique<StageRunner>(engine::Model::load(file, spec), so, [this, next](StageRunner::Output&& out) {
        if (auto* f = std::get_if<transport::Forward>(&out)) {
          next->submit(over_the_wire(*f));
        } else if (auto* s = std::get_if<transport::SampledTokens>(&out)) {
          std::lock_guard<std::mutex> lk(mu);
          results.push_back(over_the_wire(*s));
          cv.notify_all();
        } else {
          ADD_FAILURE() << std::get<transport::Error>(out).message;
        }
      });
    }
  }

  // Sends f into the first stage and waits for the last stage's answer (nullopt on timeout).
  std::optional<transport::SampledTokens> step(transport::Forward f) {
    const size_t before = [&] {
      std::lock_guard<std::mutex> lk(mu);
      return results.size();
    }();
    stages.front()->submit(std::move(f));
    std::unique_lock<std::mutex> lk(mu);
    if (!cv.wait_for(lk, std::chrono::seconds(30), [&] { return results.size() > before; })) return std::nullopt;
    return results.back();
  }
};

}  // namespace zen::node::testing
