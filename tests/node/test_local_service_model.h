// A small synthetic model (random weights, synthetic SentencePiece vocabulary, no chat
// template) written once per test binary, and a collector for a request's events.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <unistd.h>
#include <vector>

#include "engine/synth.h"
#include "node/service.h"

namespace zen::test {

// F32 by default; a K-quant mix gets a wider shape (K-quant blocks span 256 values).
inline std::string synth_model_path(engine::Mix mix = engine::Mix::F32) {
  struct Dir {  // removed when the test binary exits
    std::filesystem::path path = std::filesystem::temp_directory_path() / ("zen-test-serve-" + std::to_string(::getpid()));
    Dir() { std::filesystem::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  const std::string p = (dir.path / ("synth-serve-" + engine::mix_name(mix) + ".gguf")).string();
  if (std::filesystem::exists(p)) return p;
  engine::SynthParams sp;
  const bool wide = mix != engine::Mix::F32;
  sp.n_embd = wide ? 256 : 64;
  sp.n_layer = 2;
  sp.n_head = 4;
  sp.n_head_kv = 2;
  sp.n_ff = wide ? 512 : 128;
  sp.n_vocab = 512;
  sp.n_ctx = 512;
  sp.mix = mix;
  sp.seed = 77;
  engine::write_synth_model(sp, p);
  return p;
}

// Everything one request reported, filled on the service thread.
struct Collected {
  std::mutex m;
  std::condition_variable cv;
  std::vector<int32_t> tokens;  // token events (the stop token is not one)
  std::string text;
  bool done = false;
  node::TokenEvent last;
  int events = 0;

  std::function<bool(const node::TokenEvent&)> callback(int stop_after = -1) {
    return [this, stop_after](const node::TokenEvent& ev) {
      std::lock_guard<std::mutex> lk(m);
      ++events;
      text += ev.text;
      if (ev.done) {
        done = true;
        last = ev;
        cv.notify_all();
        return true;
      }
      tokens.push_back(ev.token);
      if (stop_after >= 0 && static_cast<int>(tokens.size()) >= stop_after) {
        done = true;  // the caller stops listening here
        cv.notify_all();
        return false;
      }
      return true;
    };
  }
  bool wait(std::chrono::milliseconds limit = std::chrono::milliseconds(20000)) {
    std::unique_lock<std::mutex> lk(m);
    return cv.wait_for(lk, limit, [&] { return done; });
  }
};

}  // namespace zen::test
