#include "node/local_service.h"

#include <algorithm>
#include <filesystem>

#include "engine/chat_template.h"
#include "engine/sampler.h"
#include "node/local_service_text.h"

namespace zen::node {

// A request from submit() to its final event. Owned by the queue, then by the scheduler.
struct LocalService::Request {
  uint64_t id = 0;
  CompletionRequest req;
  std::function<bool(const TokenEvent&)> on_event;
  int32_t slot = -1;                // the Context sequence id while it holds a slot
  std::vector<int32_t> history;     // prompt then generated ids (what the sampler looks back over)
  size_t n_fed = 0;                 // tokens whose keys/values are in the cache
  int n_generated = 0;
  std::unique_ptr<engine::Sampler> sampler;
  std::unique_ptr<engine::StreamDecoder> decoder;
  std::unique_ptr<StopText> text;   // decoded output against the stop strings
  bool ended = false;

  bool reading_prompt() const { return n_fed < req.prompt.size(); }
};

std::unique_ptr<LocalService> LocalService::open(const std::string& path, const LocalServiceOptions& opt) {
  auto model = engine::Model::load(path);
  return std::make_unique<LocalService>(std::move(model), opt, std::filesystem::path(path).stem().string());
}

LocalService::LocalService(std::shared_ptr<const engine::Model> model, const LocalServiceOptions& opt,
                           std::string default_name)
    : model_(std::move(model)), opt_(opt) {
  if (!model_->has_embed() || !model_->has_head())
    throw std::invalid_argument("LocalService needs the whole model (embedding and head)");
  if (opt_.max_seqs < 1 || opt_.max_seqs > 1024) throw std::invalid_argument("max_seqs must be in [1, 1024]");
  if (opt_.max_chunk < 1) throw std::invalid_argument("max_chunk must be at least 1");
  if (opt_.max_batch_tokens < opt_.max_seqs)
    throw std::invalid_argument("max_batch_tokens must be at least max_seqs (one row per generating sequence)");
  const engine::GgufFile& g = model_->file().gguf();
  tok_ = engine::Tokenizer::from_gguf(g);
  if (!opt_.chat_template.empty()) {
    engine::render_chat(opt_.chat_template, {}, false);  // throws for an unknown name, listing the known ones
    template_ = opt_.chat_template;
  } else {
    try {
      template_ = engine::detect_chat_template(g);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) + " (choose one with --chat-template)");
    }
  }
  name_ = !opt_.model_name.empty() ? opt_.model_name
          : !model_->hp().name.empty() ? model_->hp().name
          : !default_name.empty() ? default_name : "zen-model";

  engine::ContextParams cp;
  cp.n_ctx = opt_.n_ctx;
  cp.n_threads = std::max(1, opt_.n_threads);
  cp.max_batch = opt_.max_batch_tokens;
  cp.max_seqs = opt_.max_seqs;
  ctx_ = std::make_unique<engine::Context>(model_, cp);
  n_ctx_ = ctx_->n_ctx();
  for (int s = opt_.max_seqs - 1; s >= 0; --s) free_slots_.push_back(s);
  stats_.free_slots = opt_.max_seqs;
  thread_ = std::thread([this] { loop(); });
}

LocalService::~LocalService() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t LocalService::submit(CompletionRequest req, std::function<bool(const TokenEvent&)> on_event) {
  if (!on_event) throw std::invalid_argument("submit: on_event is required");
  if (req.prompt.empty()) throw RequestError("the prompt is empty");
  if (req.prompt.size() >= static_cast<size_t>(n_ctx_))
    throw RequestError("the prompt has " + std::to_string(req.prompt.size()) + " tokens; the context holds " +
                       std::to_string(n_ctx_) + ", so a prompt may have at most " + std::to_string(n_ctx_ - 1));
  const int32_t n_vocab = static_cast<int32_t>(model_->hp().n_vocab);
  for (int32_t t : req.prompt)
    if (t < 0 || t >= n_vocab)
      throw RequestError("token id " + std::to_string(t) + " is out of range [0, " + std::to_string(n_vocab) + ")");
  if (req.max_tokens < 1) throw RequestError("max_tokens must be at least 1");

  auto r = std::make_unique<Request>();
  r->req = std::move(req);
  r->on_event = std::move(on_event);
  uint64_t id;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw OverloadedError("the service is shutting down");
    if (queue_.size() >= free_slots_.size() + opt_.max_queue)
      throw OverloadedError("overloaded: " + std::to_string(n_active_) + " requests running and " +
                            std::to_string(queue_.size()) + " waiting; try again later");
    id = r->id = next_id_++;
    queue_.push_back(std::move(r));
    stats_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return id;
}

void LocalService::cancel(uint64_t request_id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    cancels_.insert(request_id);
  }
  cv_.notify_all();
}

nlohmann::json LocalService::cluster_info() const {
  const Stats st = stats();
  const engine::Hparams& hp = model_->hp();
  return {{"mode", "local"},
          {"model", name_},
          {"n_ctx", n_ctx_},
          {"nodes",
           nlohmann::json::array({{{"name", "local"},
                                   {"role", "coordinator"},
                                   {"address", "in-process"},
                                   {"state", "ready"},
                                   {"layers", nlohmann::json::array({0, hp.n_layer})},
                                   {"embed", true},
                                   {"head", true},
                                   {"threads", std::max(1, opt_.n_threads)},
                                   {"weight_bytes", model_->weight_bytes()},
                                   {"kv_bytes", st.kv_bytes}}})},
          {"scheduler",
           {{"max_seqs", opt_.max_seqs},
            {"max_chunk", opt_.max_chunk},
            {"max_batch_tokens", opt_.max_batch_tokens},
            {"active", st.active},
            {"queued", st.queued},
            {"requests_done", st.requests_done},
            {"tokens_generated", st.tokens_generated}}}};
}

LocalService::Stats LocalService::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

bool LocalService::emit(Request& r, TokenEvent ev) {
  if (r.ended) return false;
  const bool last = ev.done;
  bool go_on;
  try {
    go_on = r.on_event(ev);
  } catch (...) {
    go_on = false;  // a throwing callback ends only its own request
  }
  if (last) r.ended = true;
  if (!go_on) r.ended = true;  // the caller no longer listens: no final event
  return go_on && !last;
}

void LocalService::finish(Request& r, const std::string& reason, const std::string& error) {
  TokenEvent ev;
  ev.done = true;
  ev.finish_reason = reason;
  ev.error = error;
  ev.prompt_tokens = static_cast<int>(r.req.prompt.size());
  ev.completion_tokens = r.n_generated;
  if (reason != "cancelled" && reason != "error" && r.text) {
    // Whatever is held back is now final: an unfinished character, or text that only looked
    // like the start of a stop string.
    ev.text = r.text->push(r.decoder->flush());
    ev.text += r.text->finish();
  }
  emit(r, std::move(ev));
  r.ended = true;
}

bool LocalService::on_token(Request& r, int32_t token) {
  r.history.push_back(token);
  ++r.n_generated;
  const auto& st = r.req.stop_tokens;
  if (tok_->is_eog(token) || std::find(st.begin(), st.end(), token) != st.end()) {
    finish(r, "stop");
    return false;
  }
  TokenEvent ev;
  ev.token = token;
  ev.text = r.text->push(r.decoder->push(token));
  if (!emit(r, std::move(ev))) return false;
  if (r.text->stopped()) {
    finish(r, "stop");
    return false;
  }
  // The next step feeds this token at position n_fed; beyond the context it cannot.
  if (r.n_generated >= r.req.max_tokens || r.n_fed >= static_cast<size_t>(n_ctx_)) {
    finish(r, "length");
    return false;
  }
  return true;
}

void LocalService::loop() {
  std::vector<std::unique_ptr<Request>> active;
  for (;;) {
    std::vector<std::unique_ptr<Request>> dropped;  // cancelled while queued, or left at shutdown
    std::unordered_set<uint64_t> cancels;
    bool stopping;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !active.empty() || !cancels_.empty(); });
      stopping = stopping_;
      if (stopping) {
        for (auto& q : queue_) dropped.push_back(std::move(q));
        queue_.clear();
        for (auto& a : active) dropped.push_back(std::move(a));
        active.clear();
      } else {
        cancels.swap(cancels_);
        for (auto it = queue_.begin(); it != queue_.end();) {
          if (cancels.count((*it)->id)) {
            dropped.push_back(std::move(*it));
            it = queue_.erase(it);
          } else {
            ++it;
          }
        }
        while (!queue_.empty() && !free_slots_.empty()) {
          auto r = std::move(queue_.front());
          queue_.pop_front();
          r->slot = free_slots_.back();
          free_slots_.pop_back();
          active.push_back(std::move(r));
        }
        n_active_ = static_cast<int>(active.size());
        stats_.active = n_active_;
        stats_.queued = static_cast<int>(queue_.size());
        stats_.free_slots = static_cast<int>(free_slots_.size());
      }
    }
    for (auto& r : dropped) {
      if (r->slot >= 0) ctx_->clear_seq(r->slot);
      finish(*r, "cancelled");
    }
    if (stopping) {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto& r : dropped)
        if (r->slot >= 0) free_slots_.push_back(r->slot);
      stats_.active = 0;
      stats_.queued = 0;
      return;
    }
    for (auto& r : active)
      if (cancels.count(r->id)) finish(*r, "cancelled");
    for (auto& r : active)
      if (!r->sampler) {  // newly admitted
        r->history = r->req.prompt;
        r->sampler = std::make_unique<engine::Sampler>(r->req.sampling);
        r->decoder = std::make_unique<engine::StreamDecoder>(*tok_);
        r->text = std::make_unique<StopText>(r->req.stop);
      }
    step(active);
  }
}

void LocalService::step(std::vector<std::unique_ptr<Request>>& active) {
  // Rows: first one token for every generating sequence, then prompt chunks round-robin.
  std::vector<engine::BatchRow> rows;
  std::vector<Request*> out_of_row;  // the request whose logits each output row gives
  int budget = opt_.max_batch_tokens;
  int n_seqs = 0;
  for (auto& r : active) {
    if (r->ended || r->reading_prompt()) continue;
    rows.push_back({r->slot, static_cast<int32_t>(r->n_fed), r->history[r->n_fed], true});
    out_of_row.push_back(r.get());
    ++r->n_fed;
    --budget;
    ++n_seqs;
  }
  // Readers in arrival order (active keeps it): no prompt waits behind a later one.
  for (auto& r : active) {
    if (r->ended || !r->reading_prompt() || budget <= 0) continue;
    const size_t left = r->req.prompt.size() - r->n_fed;
    const size_t n = std::min({left, static_cast<size_t>(opt_.max_chunk), static_cast<size_t>(budget)});
    for (size_t i = 0; i < n; ++i) {
      const bool last = r->n_fed + 1 == r->req.prompt.size();
      rows.push_back({r->slot, static_cast<int32_t>(r->n_fed), r->req.prompt[r->n_fed], last});
      if (last) out_of_row.push_back(r.get());
      ++r->n_fed;
    }
    budget -= static_cast<int>(n);
    ++n_seqs;
  }

  uint64_t generated = 0;
  if (!rows.empty()) {
    std::vector<float> logits;
    try {
      ctx_->forward(rows, nullptr, logits);
      const size_t n_vocab = static_cast<size_t>(model_->hp().n_vocab);
      for (size_t i = 0; i < out_of_row.size(); ++i) {
        Request& r = *out_of_row[i];
        if (r.ended) continue;
        const std::span<const float> row(logits.data() + i * n_vocab, n_vocab);
        const int32_t token = r.sampler->sample(row, r.history);
        ++generated;
        on_token(r, token);
      }
    } catch (const std::exception& e) {
      for (Request* r : out_of_row) finish(*r, "error", e.what());
      for (auto& r : active) finish(*r, "error", e.what());
    }
  }

  // Requests that ended leave the batch; their slots go back.
  std::vector<int32_t> freed;
  size_t n_done = 0;
  for (auto& r : active)
    if (r->ended) {
      ctx_->clear_seq(r->slot);
      freed.push_back(r->slot);
      ++n_done;
    }
  active.erase(std::remove_if(active.begin(), active.end(), [](const auto& r) { return r->ended; }), active.end());
  std::lock_guard<std::mutex> lk(mu_);
  free_slots_.insert(free_slots_.end(), freed.begin(), freed.end());
  n_active_ = static_cast<int>(active.size());
  stats_.active = n_active_;
  stats_.kv_bytes = ctx_->kv_bytes();
  stats_.free_slots = static_cast<int>(free_slots_.size());
  if (!rows.empty()) ++stats_.steps;
  stats_.max_step_rows = std::max(stats_.max_step_rows, static_cast<int>(rows.size()));
  stats_.max_step_seqs = std::max(stats_.max_step_seqs, n_seqs);
  stats_.requests_done += n_done;
  stats_.tokens_generated += generated;
}

}  // namespace zen::node
