// Coordinator internals shared by coordinator*.cpp.
#pragma once
#include <chrono>
#include "engine/speculative.h"
#include "node/coordinator.h"
#include "node/local_service_text.h"

namespace zen::node {

struct Coordinator::Node {
  std::string name;
  std::shared_ptr<transport::Link> link;
  transport::Hello hello;
  bool ready = false;  // loaded its slice of the current plan
  int stage = -1;      // index in the current plan, -1 when spare
  // Why it could not load its stage of a plan; such a node is left out of planning until it
  // reconnects (a new session, perhaps after its owner freed memory or disk).
  std::string load_error;
};

struct Coordinator::Request {
  uint64_t id = 0;
  uint32_t seq = 0;
  CompletionRequest req;
  std::function<bool(const TokenEvent&)> on_event;
  int n_prompt = 0;
  int generated = 0;
  std::vector<int32_t> tokens;  // sampled so far: with the prompt, what a resume rebuilds the KV caches from
  bool running = false;         // started on the current plan (false: waiting for one)
  int32_t next_pos = 0;
  std::unique_ptr<engine::StreamDecoder> dec;
  std::unique_ptr<StopText> stop;  // releases text that cannot be the start of a stop string
  std::unique_ptr<engine::DraftLength> draft_len;  // speculative decoding: k for the next pass
  int pending_draft = 0;           // drafts in the Forward in flight
  int pass_rows = 0;               // rows of the decode pass in flight (0: a prompt pass)
  std::chrono::steady_clock::time_point pass_start{};  // when its drafting began
  engine::SpecStats spec;
  std::chrono::steady_clock::time_point progress_at;  // the last output of a stage for it
  int retries = 0;                  // re-reads after a stall (lost message)
};

}  // namespace zen::node
