#include "node/local_service.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "engine/chat_template.h"
#include "engine/sampler.h"
#include "engine/speculative.h"
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
  std::unique_ptr<engine::Sampler> draft_sampler;  // a draft model's sampled drafts
  std::unique_ptr<engine::DraftLength> draft_len;  // speculative: k per pass
  engine::SpecStats spec;
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
  if (opt_.speculative == "draft") {
    if (opt_.draft_model.empty()) throw std::invalid_argument("speculative decoding with a draft model needs draft_model");
    auto dm = engine::Model::load(opt_.draft_model);
    if (dm->hp().n_vocab != model_->hp().n_vocab)
      throw std::invalid_argument("the draft model's vocabulary (" + std::to_string(dm->hp().n_vocab) +
                                  " tokens) differs from the model's (" + std::to_string(model_->hp().n_vocab) + ")");
    // Drafting one token costs about the draft's share of the weight bytes read.
    spec_cost_ += static_cast<double>(dm->weight_bytes()) / static_cast<double>(model_->weight_bytes());
    draft_ = std::make_unique<engine::DraftModel>(std::move(dm), n_ctx_, opt_.max_seqs, cp.n_threads);
  } else if (opt_.speculative != "off" && opt_.speculative != "lookup") {
    throw std::invalid_argument("speculative must be off, lookup or draft (got '" + opt_.speculative + "')");
  }
  if (opt_.spec_k_max < 1 || opt_.spec_k_max > 32) throw std::invalid_argument("spec_k_max must be in [1, 32]");
  pass_cost_ = std::make_unique<engine::PassCost>(spec_cost_);
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

void LocalService::validate(const CompletionRequest& req) const {
  if (req.prompt.empty()) throw RequestError("the prompt is empty");
  if (req.prompt.size() >= static_cast<size_t>(n_ctx_))
    throw RequestError("the prompt has " + std::to_string(req.prompt.size()) + " tokens; the context holds " +
                       std::to_string(n_ctx_) + ", so a prompt may have at most " + std::to_string(n_ctx_ - 1));
  const int32_t n_vocab = static_cast<int32_t>(model_->hp().n_vocab);
  for (int32_t t : req.prompt)
    if (t < 0 || t >= n_vocab)
      throw RequestError("token id " + std::to_string(t) + " is out of range [0, " + std::to_string(n_vocab) + ")");
  if (req.max_tokens < 1) throw RequestError("max_tokens must be at least 1");
}

uint64_t LocalService::submit(CompletionRequest req, std::function<bool(const TokenEvent&)> on_event) {
  std::vector<std::pair<CompletionRequest, std::function<bool(const TokenEvent&)>>> one;
  one.emplace_back(std::move(req), std::move(on_event));
  return submit_all(std::move(one)).front();
}

std::vector<uint64_t> LocalService::submit_all(
    std::vector<std::pair<CompletionRequest, std::function<bool(const TokenEvent&)>>> requests) {
  for (const auto& [req, on_event] : requests) {
    if (!on_event) throw std::invalid_argument("submit: on_event is required");
    validate(req);
  }
  std::vector<uint64_t> ids;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_) throw OverloadedError("the service is shutting down");
    if (queue_.size() + requests.size() > free_slots_.size() + opt_.max_queue)
      throw OverloadedError("overloaded: " + std::to_string(n_active_) + " requests running and " +
                            std::to_string(queue_.size()) + " waiting; try again later");
    for (auto& [req, on_event] : requests) {
      auto r = std::make_unique<Request>();
      r->req = std::move(req);
      r->on_event = std::move(on_event);
      ids.push_back(r->id = next_id_++);
      queue_.push_back(std::move(r));
    }
    stats_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return ids;
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

void LocalService::write_metrics(MetricsText& m) const {
  const Stats st = stats();
  m.counter("zen_requests_completed_total", "requests that ended (any reason)", static_cast<double>(st.requests_done));
  m.gauge("zen_requests_active", "requests holding a sequence slot", st.active);
  m.gauge("zen_requests_queued", "requests waiting for a slot", st.queued);
  m.counter("zen_prompt_tokens_total", "prompt tokens read", static_cast<double>(st.prompt_tokens));
  m.counter("zen_generated_tokens_total", "tokens generated", static_cast<double>(st.tokens_generated));
  m.counter("zen_batch_steps_total", "forward passes (batches) run", static_cast<double>(st.steps));
  m.counter("zen_batch_rows_total", "rows over all batches (divide by steps for the mean batch)", static_cast<double>(st.rows_total));
  m.gauge("zen_batch_rows_max", "the largest batch so far", st.max_step_rows);
  const MetricsText::Labels here = {{"stage", "0"}, {"node", "local"}};
  m.counter("zen_stage_busy_seconds_total", "time a stage spent computing", st.busy_seconds, here);
  m.gauge("zen_kv_cache_bytes", "KV cache memory held", static_cast<double>(st.kv_bytes), {{"node", "local"}});
  m.gauge("zen_sequence_slots_free", "sequence slots free", st.free_slots);
  m.counter("zen_spec_passes_total", "speculative verify passes", static_cast<double>(st.speculative.passes));
  m.counter("zen_spec_drafted_tokens_total", "draft tokens checked", static_cast<double>(st.speculative.drafted));
  m.counter("zen_spec_accepted_tokens_total", "draft tokens accepted", static_cast<double>(st.speculative.accepted));
}

LocalService::Stats LocalService::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

void fair_shares(std::vector<size_t>& want, size_t budget) {
  std::vector<size_t> give(want.size(), 0);
  std::vector<size_t> open;  // those that want more than they have been given
  for (size_t i = 0; i < want.size(); ++i)
    if (want[i] > 0) open.push_back(i);
  // Water-filling: an equal share for each open reader; one that wants less takes what it
  // wants and leaves the rest to the others.
  while (!open.empty() && budget > 0) {
    const size_t share = budget / open.size();
    std::vector<size_t> still;
    bool settled = false;
    for (size_t i : open) {
      if (want[i] - give[i] <= share) {
        budget -= want[i] - give[i];
        give[i] = want[i];
        settled = true;
      } else {
        still.push_back(i);
      }
    }
    open.swap(still);
    if (settled) continue;
    // Everyone wants more than an equal share: give it, and the remainder in order.
    for (size_t i : open) give[i] += share;
    budget -= share * open.size();
    for (size_t k = 0; k < open.size() && budget > 0; ++k, --budget) ++give[open[k]];
    break;
  }
  want.swap(give);
}

bool LocalService::emit(Request& r, TokenEvent ev) {
  if (r.ended) return false;
  const bool last = ev.done;
  auto count_end = [this] {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.requests_done;
  };
  if (last) count_end();  // before the caller hears of it: /metrics read then already counts it
  bool go_on;
  try {
    go_on = r.on_event(ev);
  } catch (...) {
    go_on = false;  // a throwing callback ends only its own request
  }
  if (!last && !go_on) count_end();  // the caller no longer listens: no final event
  if (last || !go_on) r.ended = true;
  return go_on && !last;
}

void LocalService::finish(Request& r, const std::string& reason, const std::string& error) {
  if (r.slot >= 0 && !r.ended) {  // its cache is freed before the caller hears the end
    ctx_->clear_seq(r.slot);
    if (draft_) draft_->drop(r.slot);
    std::lock_guard<std::mutex> lk(mu_);
    stats_.kv_bytes = ctx_->kv_bytes();
  }
  TokenEvent ev;
  ev.done = true;
  ev.finish_reason = reason;
  ev.error = error;
  ev.prompt_tokens = static_cast<int>(r.req.prompt.size());
  ev.completion_tokens = r.n_generated;
  ev.speculative = r.spec;
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
      if (r->slot >= 0 && draft_) draft_->drop(r->slot);
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
        if (opt_.speculative != "off")
          r->draft_len = std::make_unique<engine::DraftLength>(opt_.spec_k_max, spec_cost_, pass_cost_.get());
        if (draft_) {
          engine::SamplerParams dp = r->req.sampling;
          dp.seed ^= 0x9E3779B97F4A7C15ull;  // its own stream: drafts must not steal the target's numbers
          r->draft_sampler = std::make_unique<engine::Sampler>(dp);
        }
      }
    step(active);
  }
}

void LocalService::step(std::vector<std::unique_ptr<Request>>& active) {
  // Rows: first the next token of every generating sequence (with its drafts when
  // speculating), then prompt chunks round-robin.
  const auto step_start = std::chrono::steady_clock::now();  // drafting included in a pass's cost
  std::vector<engine::BatchRow> rows;
  struct Out {
    Request* r;
    size_t row;          // its first output row
    engine::Draft draft;  // checked against rows row+1 ..
  };
  std::vector<Out> outs;
  size_t n_out_rows = 0;
  int budget = opt_.max_batch_tokens;
  int n_seqs = 0;
  int n_generating = 0;
  for (auto& r : active)
    if (!r->ended && !r->reading_prompt()) ++n_generating;
  // Speculate while few sequences generate: with more, the batch already fills every pass.
  const bool speculate = n_generating <= 2;
  for (auto& r : active) {
    if (r->ended || r->reading_prompt()) continue;
    Out o{r.get(), n_out_rows, {}};
    // Drafts fit the step's budget (one row each for the other generating sequences), the
    // context and the request's remaining tokens.
    if (r->draft_len && speculate) {
      const int room = std::min({budget - n_generating, n_ctx_ - 1 - static_cast<int>(r->n_fed),
                                 r->req.max_tokens - r->n_generated - 1});
      const int k = std::min(r->draft_len->next(), room);
      if (k > 0) {
        try {
          if (draft_)
            o.draft = draft_->draft(r->slot, r->history, k, *r->draft_sampler);
          else
            o.draft.tokens = engine::prompt_lookup(r->history, k);
        } catch (const std::exception&) {
          o.draft = {};  // a failed draft costs only the speed-up
        }
      }
    }
    rows.push_back({r->slot, static_cast<int32_t>(r->n_fed), r->history[r->n_fed], true});
    for (size_t i = 0; i < o.draft.tokens.size(); ++i)
      rows.push_back({r->slot, static_cast<int32_t>(r->n_fed + 1 + i), o.draft.tokens[i], true});
    const int used = 1 + static_cast<int>(o.draft.tokens.size());
    r->n_fed += static_cast<size_t>(used);
    n_out_rows += static_cast<size_t>(used);
    budget -= used;
    --n_generating;
    ++n_seqs;
    outs.push_back(std::move(o));
  }
  size_t prompt_read = 0;
  // Prompt readers share what is left of the step fairly: each gets an equal part (a reader
  // that needs less gives the rest to the others), so a short prompt behind a long one is not
  // kept waiting until the long one has been read; leftover rows go in arrival order.
  std::vector<Request*> readers;
  std::vector<size_t> quota;
  for (auto& r : active)
    if (!r->ended && r->reading_prompt()) {
      readers.push_back(r.get());
      quota.push_back(std::min(r->req.prompt.size() - r->n_fed, static_cast<size_t>(opt_.max_chunk)));  // what it wants
    }
  fair_shares(quota, static_cast<size_t>(std::max(budget, 0)));
  for (size_t j = 0; j < readers.size(); ++j) {
    Request* r = readers[j];
    const size_t n = quota[j];
    if (n == 0) continue;
    for (size_t i = 0; i < n; ++i) {
      const bool last = r->n_fed + 1 == r->req.prompt.size();
      rows.push_back({r->slot, static_cast<int32_t>(r->n_fed), r->req.prompt[r->n_fed], last});
      if (last) outs.push_back({r, n_out_rows++, {}});
      ++r->n_fed;
    }
    prompt_read += n;
    budget -= static_cast<int>(n);
    ++n_seqs;
  }

  if (!rows.empty()) {
    double busy = 0;
    std::vector<float> logits;
    try {
      const auto t0 = std::chrono::steady_clock::now();
      ctx_->forward(rows, nullptr, logits);
      busy = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (n_seqs == 1 && prompt_read == 0)  // a lone generating sequence: what its k costs
        pass_cost_->record(static_cast<int>(rows.size()),
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count());
      {  // before any token of this pass goes out (see below)
        std::lock_guard<std::mutex> lk(mu_);
        ++stats_.steps;
        stats_.max_step_rows = std::max(stats_.max_step_rows, static_cast<int>(rows.size()));
        stats_.max_step_seqs = std::max(stats_.max_step_seqs, n_seqs);
        stats_.prompt_tokens += prompt_read;
        stats_.rows_total += rows.size();
        stats_.busy_seconds += busy;
      }
      const size_t n_vocab = static_cast<size_t>(model_->hp().n_vocab);
      for (Out& o : outs) {
        Request& r = *o.r;
        if (r.ended) continue;
        const size_t k = o.draft.tokens.size();
        const std::span<const float> rows_k(logits.data() + o.row * n_vocab, (k + 1) * n_vocab);
        std::vector<int32_t> tokens;
        if (k == 0) {
          tokens.push_back(r.sampler->sample(rows_k, r.history));
        } else {
          tokens = engine::verify(*r.sampler, rows_k, n_vocab, r.history, o.draft);
          // The cache holds the drafts' keys and values; keep those of the accepted ones.
          const size_t accepted = tokens.size() - 1;
          r.n_fed -= k - accepted;
          ctx_->truncate_seq(r.slot, static_cast<int32_t>(r.n_fed));
          r.draft_len->record(static_cast<int>(k), static_cast<int>(accepted));
          engine::SpecStats one{1, k, accepted, tokens.size()};
          r.spec.add(one);
          // Counted before the tokens go out: a client that reads /metrics as soon as its
          // answer ends sees the pass that produced it.
          std::lock_guard<std::mutex> lk(mu_);
          stats_.speculative.add(one);
        }
        for (int32_t t : tokens) {
          {
            std::lock_guard<std::mutex> lk(mu_);
            ++stats_.tokens_generated;
          }
          if (!on_token(r, t)) break;
        }
      }
    } catch (const std::exception& e) {
      for (Out& o : outs) finish(*o.r, "error", e.what());
      for (auto& r : active) finish(*r, "error", e.what());
    }
  }

  // Requests that ended leave the batch; their slots go back.
  std::vector<int32_t> freed;
  for (auto& r : active)
    if (r->ended) {
      ctx_->clear_seq(r->slot);
      if (draft_) draft_->drop(r->slot);
      freed.push_back(r->slot);
    }
  active.erase(std::remove_if(active.begin(), active.end(), [](const auto& r) { return r->ended; }), active.end());
  std::lock_guard<std::mutex> lk(mu_);
  free_slots_.insert(free_slots_.end(), freed.begin(), freed.end());
  n_active_ = static_cast<int>(active.size());
  stats_.active = n_active_;
  stats_.kv_bytes = ctx_->kv_bytes();
  stats_.free_slots = static_cast<int>(free_slots_.size());
}

}  // namespace zen::node
