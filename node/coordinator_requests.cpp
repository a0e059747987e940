// Coordinator: requests through the pipeline (prompt chunks, one token per step, stop rules).
#include <algorithm>

#include "node/coordinator.h"
#include "node/coordinator_internal.h"
#include "node/peer.h"

namespace zen::node {

namespace {
constexpr size_t kPromptChunk = 512;  // rows per prompt batch, as the single-node engine uses
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
    else if (serving_) start(*requests_.at(rid));
    else waiting_.push_back(rid);
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
  for (size_t a = 0; a < history.size(); a += kPromptChunk) {
    const size_t b = std::min(history.size(), a + kPromptChunk);
    transport::Forward f;
    f.request_id = r.id;
    for (size_t i = a; i < b; ++i) {
      f.seq_ids.push_back(r.seq);
      f.positions.push_back(static_cast<int32_t>(i));
      f.tokens.push_back(history[i]);
    }
    f.last_chunk = b == history.size();
    f.want_logits = f.last_chunk;
    to_stage(0, std::move(f));
  }
  r.next_pos = static_cast<int32_t>(history.size());
  r.running = true;
}

void Coordinator::on_stage_output(int stage, StageRunner::Output&& out) {
  if (auto* f = std::get_if<transport::Forward>(&out)) {
    auto it = requests_.find(f->request_id);
    if (it != requests_.end() && it->second->running) to_stage(stage + 1, std::move(*f));
  } else if (auto* s = std::get_if<transport::SampledTokens>(&out)) {
    if (!s->tokens.empty()) on_token(s->request_id, s->tokens.front());
  } else if (auto* e = std::get_if<transport::Error>(&out)) {
    // "request <id>: reason" fails that request; anything else is logged.
    uint64_t id = 0;
    if (e->message.rfind("request ", 0) == 0) id = std::strtoull(e->message.c_str() + 8, nullptr, 10);
    auto it = requests_.find(id);
    if (it != requests_.end()) finish(*it->second, "error", e->message.substr(e->message.find(": ") + 2));
    else log_line(cfg_.name, "stage " + std::to_string(stage) + " error: " + e->message);
  }
}

void Coordinator::on_token(uint64_t id, int32_t token) {
  auto it = requests_.find(id);
  if (it == requests_.end() || !it->second->running) return;  // cancelled, or waiting to resume
  Request& r = *it->second;
  ++r.generated;
  r.tokens.push_back(token);
  const bool eog = tok_->is_eog(token) ||
                   std::find(r.req.stop_tokens.begin(), r.req.stop_tokens.end(), token) != r.req.stop_tokens.end();
  if (eog) return finish(r, "stop");
  TokenEvent ev;
  ev.token = token;
  ev.text = r.stop->push(r.dec->push(token));
  if (r.stop->stopped()) {
    if (!ev.text.empty()) r.on_event(ev);
    return finish(r, "stop");
  }
  if (!r.on_event(ev)) return finish(r, "cancelled");
  if (r.generated >= r.req.max_tokens || r.next_pos + 1 >= n_ctx_) return finish(r, "length");
  transport::Forward f;
  f.request_id = r.id;
  f.seq_ids = {r.seq};
  f.positions = {r.next_pos++};
  f.tokens = {token};
  f.want_logits = f.last_chunk = true;
  to_stage(0, std::move(f));
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
  r.on_event(ev);
  transport::ClearSequence c{r.id, {r.seq}};
  for (int s = 0; s < static_cast<int>(stage_nodes_.size()); ++s) to_stage(s, c);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r.id), waiting_.end());
  requests_.erase(r.id);  // r is gone after this line
  if (replan_pending_ && requests_.empty()) replan();
}

}  // namespace zen::node
