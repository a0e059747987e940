// Coordinator: requests through the pipeline (prompt chunks, one token per step, stop rules).
#include <algorithm>

#include "node/coordinator.h"
#include "node/coordinator_internal.h"
#include "node/peer.h"

namespace zen::node {

namespace {
// Rows per prompt message. A stage batches a chunk with the decode rows of the other streams,
// so a long prompt is read in pieces between their tokens instead of freezing them for its
// whole length (128 rows still keep the tile kernels at full speed).
constexpr size_t kPromptChunk = 128;
}

uint64_t Coordinator::submit(CompletionRequest req, std::function<bool(const TokenEvent&)> on_event) {
  if (req.prompt.empty()) throw RequestError("the prompt is empty");
  if (static_cast<int64_t>(req.prompt.size()) >= n_ctx_)
    throw RequestError("the prompt has " + std::to_string(req.prompt.size()) + " tokens; the context holds " +
                       std::to_string(n_ctx_));
  if (req.max_tokens < 1) throw RequestError("max_tokens must be at least 1");
  for (int32_t t : req.prompt)
    if (t < 0 || t >= tok_->n_vocab()) throw RequestError("token id " + std::to_string(t) + " is out of range");
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!snapshot_unfit_.empty())
      throw OverloadedError("the model does not fit the nodes present (" + snapshot_unfit_ +
                            "); the cluster serves again when enough nodes join");
  }
  {
    // Beyond the running requests, a bounded queue; past it the client hears 503 at once.
    std::lock_guard<std::mutex> lk(mu_);
    const int max_waiting = 64 + 4 * std::max(1, cfg_.limits.max_sequences);
    if (counters_.waiting >= max_waiting)
      throw OverloadedError("overloaded: " + std::to_string(counters_.running) + " requests running and " +
                            std::to_string(counters_.waiting) + " waiting; try again later");
  }
  auto r = std::make_unique<Request>();
  r->id = next_id_++;
  r->seq = static_cast<uint32_t>(r->id);
  r->n_prompt = static_cast<int>(req.prompt.size());
  r->req = std::move(req);
  r->on_event = std::move(on_event);
  r->dec = std::make_unique<engine::StreamDecoder>(*tok_);
  r->stop = std::make_unique<StopText>(r->req.stop);
  const uint64_t id = r->id;
  auto holder = std::make_shared<std::unique_ptr<Request>>(std::move(r));
  post([this, holder] {
    Request& req = **holder;
    const uint64_t rid = req.id;
    requests_[rid] = std::move(*holder);
    if (!unfit_.empty())
      finish(*requests_.at(rid), "error", "the model does not fit the nodes present (" + unfit_ + ")");
    else {
      waiting_.push_back(rid);
      admit();
    }
  });
  return id;
}

void Coordinator::cancel(uint64_t id) {
  post([this, id] {
    auto it = requests_.find(id);
    if (it != requests_.end()) finish(*it->second, "cancelled");
  });
}

void Coordinator::to_stage(int stage, transport::Message m) {
  if (stage < 0 || stage >= static_cast<int>(stage_nodes_.size())) return;
  const std::string& who = stage_nodes_[static_cast<size_t>(stage)];
  if (who.empty()) {
    if (!local_) return;
    if (auto* f = std::get_if<transport::Forward>(&m)) local_->submit(std::move(*f));
    else if (auto* s = std::get_if<transport::StartRequest>(&m)) local_->start_request(*s);
    else if (auto* c = std::get_if<transport::ClearSequence>(&m)) local_->clear(*c);
    return;
  }
  auto it = nodes_.find(who);
  if (it == nodes_.end() || !send_wait(*it->second->link, m))
    log_line(cfg_.name, "cannot reach stage " + std::to_string(stage) + " on " + who);
}

void Coordinator::start(Request& r) {
  r.pending_draft = 0;  // a Forward of an older plan is gone with it
  r.progress_at = std::chrono::steady_clock::now();
  if (cfg_.speculative.mode != "off" && !r.draft_len)
    r.draft_len = std::make_unique<engine::DraftLength>(cfg_.speculative.max_draft, spec_cost_, pass_cost_.get());
  // A resumed request rebuilds its KV caches from the prompt and the tokens sampled so far;
  // the last stage's sampler skips the random draws those tokens took.
  std::vector<int32_t> history = r.req.prompt;
  history.insert(history.end(), r.tokens.begin(), r.tokens.end());
  const int last = static_cast<int>(stage_nodes_.size()) - 1;
  transport::StartRequest s;
  s.request_id = r.id;
  s.seq_ids = {r.seq};
  const auto& p = r.req.sampling;
  s.sampling = {p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty, p.repeat_last_n, p.seed};
  s.history = history;
  s.tokens_sampled = static_cast<uint32_t>(r.tokens.size());
  to_stage(last, s);
  // In batches; only the last row of the last batch asks for logits.
  // Chunks no larger than a pass of the coordinator's stage may take (each node's stage still
  // splits what exceeds its own limits.max_batch_tokens).
  const size_t chunk = std::min(kPromptChunk, static_cast<size_t>(std::max(1, cfg_.limits.max_batch_tokens)));
  for (size_t a = 0; a < history.size(); a += chunk) {
    const size_t b = std::min(history.size(), a + chunk);
    transport::Forward f;
    f.request_id = r.id;
    for (size_t i = a; i < b; ++i) {
      f.seq_ids.push_back(r.seq);
      f.positions.push_back(static_cast<int32_t>(i));
      f.tokens.push_back(history[i]);
    }
    f.last_chunk = b == history.size();
    f.want_logits = f.last_chunk;
    if (f.last_chunk) sent_at_[{r.id, 0}] = std::chrono::steady_clock::now();
    to_stage(0, std::move(f));
  }
  r.next_pos = static_cast<int32_t>(history.size());
  r.running = true;
}

void Coordinator::on_stage_output(int stage, StageRunner::Output&& out) {
  // Per-stage pass time: from the Forward's sending to its output (compute, queueing, hops).
  auto timed = [&](uint64_t id) {
    auto it = sent_at_.find({id, stage});
    if (it == sent_at_.end()) return;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second).count();
    sent_at_.erase(it);
    std::lock_guard<std::mutex> lk(mu_);
    if (counters_.stage_seconds.size() <= static_cast<size_t>(stage)) {
      counters_.stage_seconds.resize(static_cast<size_t>(stage) + 1, 0.0);
      counters_.stage_passes.resize(static_cast<size_t>(stage) + 1, 0);
    }
    counters_.stage_seconds[static_cast<size_t>(stage)] += dt;
    ++counters_.stage_passes[static_cast<size_t>(stage)];
  };
  if (auto* f = std::get_if<transport::Forward>(&out)) {
    timed(f->request_id);
    auto it = requests_.find(f->request_id);
    if (it != requests_.end() && it->second->running) {
      it->second->progress_at = std::chrono::steady_clock::now();
      if (f->want_logits) sent_at_[{f->request_id, stage + 1}] = std::chrono::steady_clock::now();
      to_stage(stage + 1, std::move(*f));
    }
  } else if (auto* s = std::get_if<transport::SampledTokens>(&out)) {
    timed(s->request_id);
    on_tokens(s->request_id, s->tokens);
  } else if (auto* e = std::get_if<transport::Error>(&out)) {
    // "request <id>: reason" fails that request; anything else is logged.
    uint64_t id = 0;
    if (e->message.rfind("request ", 0) == 0) id = std::strtoull(e->message.c_str() + 8, nullptr, 10);
    auto it = requests_.find(id);
    if (it != requests_.end()) finish(*it->second, "error", e->message.substr(e->message.find(": ") + 2));
    else log_line(cfg_.name, "stage " + std::to_string(stage) + " error: " + e->message);
  }
}

void Coordinator::on_tokens(uint64_t id, const std::vector<int32_t>& tokens) {
  auto it = requests_.find(id);
  if (it == requests_.end() || !it->second->running || tokens.empty()) return;  // cancelled, or waiting to resume
  Request& r = *it->second;
  r.progress_at = std::chrono::steady_clock::now();
  if (r.pass_rows > 0 && requests_.size() == 1)  // a lone request: what a pass of its rows costs
    pass_cost_->record(r.pass_rows, std::chrono::duration<double>(r.progress_at - r.pass_start).count());
  r.pass_rows = 0;
  if (r.pending_draft > 0) {
    // The stages hold keys and values for every draft; the rejected ones are overwritten
    // when the next Forward starts at the first of them.
    const int k = r.pending_draft;
    const int accepted = std::min<int>(k, static_cast<int>(tokens.size()) - 1);
    r.next_pos -= k - accepted;
    r.pending_draft = 0;
    if (r.draft_len) r.draft_len->record(k, accepted);
    const engine::SpecStats one{1, static_cast<uint64_t>(k), static_cast<uint64_t>(accepted), tokens.size()};
    r.spec.add(one);
    std::lock_guard<std::mutex> lk(mu_);
    counters_.spec.add(one);
  }
  // Token i will be fed at next_pos - (n - 1) + i: the last one at next_pos.
  const int32_t first_pos = r.next_pos - static_cast<int32_t>(tokens.size()) + 1;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!take_token(r, tokens[i], first_pos + static_cast<int32_t>(i))) return;
  send_next(r);
}

bool Coordinator::take_token(Request& r, int32_t token, int32_t feed_pos) {
  ++r.generated;
  r.tokens.push_back(token);
  const bool eog = tok_->is_eog(token) ||
                   std::find(r.req.stop_tokens.begin(), r.req.stop_tokens.end(), token) != r.req.stop_tokens.end();
  if (eog) {
    finish(r, "stop");
    return false;
  }
  TokenEvent ev;
  ev.token = token;
  ev.text = r.stop->push(r.dec->push(token));
  if (r.stop->stopped()) {
    if (!ev.text.empty()) r.on_event(ev);
    finish(r, "stop");
    return false;
  }
  if (!r.on_event(ev)) {
    finish(r, "cancelled");
    return false;
  }
  if (r.generated >= r.req.max_tokens || feed_pos + 1 >= n_ctx_) {
    finish(r, "length");
    return false;
  }
  return true;
}

void Coordinator::send_next(Request& r) {
  transport::Forward f;
  f.request_id = r.id;
  f.seq_ids = {r.seq};
  f.positions = {r.next_pos};
  f.tokens = {r.tokens.back()};
  f.want_logits = f.last_chunk = true;
  r.pass_start = std::chrono::steady_clock::now();
  // Speculate while few requests run: with many, the batch already fills every pass.
  if (r.draft_len && requests_.size() <= 2) {
    const int room = std::min(r.req.max_tokens - r.generated - 1, n_ctx_ - 2 - r.next_pos);
    const int k = std::min(r.draft_len->next(), room);
    if (k > 0) {
      std::vector<int32_t> history = r.req.prompt;
      history.insert(history.end(), r.tokens.begin(), r.tokens.end());
      try {
        if (draft_) {
          // Greedy drafts: deterministic proposals, so the last stage's rejection rule keeps
          // a sampled request's distribution exact without the draft's probabilities.
          engine::Sampler greedy(engine::SamplerParams{0.0f});
          f.draft = draft_->draft(static_cast<int32_t>(r.seq), history, k, greedy).tokens;
        } else {
          f.draft = engine::prompt_lookup(history, k);
        }
      } catch (const std::exception& e) {
        log_line(cfg_.name, std::string("drafting failed: ") + e.what());
        f.draft.clear();
      }
      for (size_t i = 0; i < f.draft.size(); ++i) {
        f.seq_ids.push_back(r.seq);
        f.positions.push_back(r.next_pos + 1 + static_cast<int32_t>(i));
        f.tokens.push_back(f.draft[i]);
      }
      r.pending_draft = static_cast<int>(f.draft.size());
    }
  }
  r.next_pos += static_cast<int32_t>(f.seq_ids.size());
  r.pass_rows = static_cast<int>(f.seq_ids.size());
  sent_at_[{r.id, 0}] = std::chrono::steady_clock::now();
  to_stage(0, std::move(f));
}

void Coordinator::check_stalls() {
  const auto now = std::chrono::steady_clock::now();
  const auto limit = cfg_.limits.step_timeout;
  next_stall_check_ = now + std::max<std::chrono::milliseconds>(limit / 4, std::chrono::milliseconds(10));
  if (limit.count() <= 0 || !serving_) return;
  std::vector<uint64_t> stalled;
  for (const auto& [id, r] : requests_)
    if (r->running && now - r->progress_at > limit) stalled.push_back(id);
  for (uint64_t id : stalled) {
    Request& r = *requests_.at(id);
    if (++r.retries > 3) {
      finish(r, "error", "no answer from the pipeline for " + format_duration(limit) + ", " + std::to_string(r.retries - 1) +
                             " times: messages are being lost");
      continue;
    }
    // A message was lost (the links are up, or the node would be gone): read the request again
    // from its history; the stages roll their caches back to position 0 as the prompt arrives.
    log_line(cfg_.name, "request " + std::to_string(id) + " made no progress for " + format_duration(limit) +
                            ": re-reading it (retry " + std::to_string(r.retries) + " of 3)");
    start(r);
  }
}

void Coordinator::finish(Request& r, const std::string& reason, const std::string& error) {
  TokenEvent ev;
  ev.done = true;
  ev.finish_reason = reason;
  ev.error = error;
  if (!r.stop->stopped() && reason != "error") {
    ev.text = r.stop->push(r.dec->flush());
    ev.text += r.stop->finish();
  }
  ev.prompt_tokens = r.n_prompt;
  ev.completion_tokens = r.generated;
  ev.speculative = r.spec;
  {  // counted before the caller hears of it: /metrics read then already counts it
    std::lock_guard<std::mutex> lk(mu_);
    ++counters_.requests_done;
    counters_.prompt_tokens += static_cast<uint64_t>(r.n_prompt);
    counters_.generated += static_cast<uint64_t>(r.generated);
  }
  r.on_event(ev);
  if (r.spec.passes > 0)
    log_line(cfg_.name, "request " + std::to_string(r.id) + ": " + std::to_string(r.spec.emitted) + " tokens in " +
                            std::to_string(r.spec.passes) + " speculative passes; pass ms by rows: " + pass_cost_->describe());
  if (draft_) draft_->drop(static_cast<int32_t>(r.seq));
  for (int s = 0; s < static_cast<int>(stage_nodes_.size()) + 1; ++s) sent_at_.erase({r.id, s});
  transport::ClearSequence c{r.id, {r.seq}};
  for (int s = 0; s < static_cast<int>(stage_nodes_.size()); ++s) to_stage(s, c);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r.id), waiting_.end());
  requests_.erase(r.id);  // r is gone after this line
  admit();
  if (replan_pending_ && requests_.empty()) replan();
}

}  // namespace zen::node
