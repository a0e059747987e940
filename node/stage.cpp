#include "node/stage.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <tuple>

#include "engine/speculative.h"
#include "node/config.h"
#include "transport/tensor.h"

namespace zen::node {

StageOptions stage_options(const NodeConfig& cfg, int n_ctx, int n_stages) {
  StageOptions so;
  so.context.n_threads = cfg.threads > 0 ? cfg.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  so.context.n_ctx = n_ctx;
  so.context.max_seqs = std::max(1, cfg.limits.max_sequences);
  so.context.max_batch = so.max_batch_rows = std::max(1, cfg.limits.max_batch_tokens);
  so.dump_logits_dir = cfg.debug_dump_logits.string();
  so.n_stages = n_stages;  // streams split into a group per stage
  so.activation = cfg.activation_type == ActivationType::f32   ? transport::DType::f32
                  : cfg.activation_type == ActivationType::f16 ? transport::DType::f16
                                                               : transport::DType::bf16;
  return so;
}

StageRunner::StageRunner(std::shared_ptr<const engine::Model> model, const StageOptions& opts, Emit emit)
    : model_(std::move(model)), opts_(opts), emit_(std::move(emit)) {
  engine::ContextParams cp = opts_.context;
  cp.max_batch = std::max(cp.max_batch, 1);
  ctx_ = std::make_unique<engine::Context>(model_, cp);
  thread_ = std::thread([this] { loop(); });
}

StageRunner::~StageRunner() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StageRunner::start_request(const transport::StartRequest& r) {
  { std::lock_guard<std::mutex> lk(mu_); queue_.emplace_back(r); }
  cv_.notify_one();
}

void StageRunner::submit(transport::Forward&& f) {
  { std::lock_guard<std::mutex> lk(mu_); queue_.emplace_back(std::move(f)); }
  cv_.notify_one();
}

void StageRunner::clear(const transport::ClearSequence& c) {
  { std::lock_guard<std::mutex> lk(mu_); queue_.emplace_back(c); }
  cv_.notify_one();
}

StageRunner::Stats StageRunner::stats() const {
  std::lock_guard<std::mutex> lk(stats_mu_);
  return stats_;
}

void StageRunner::loop() {
  std::vector<transport::Forward> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      gather(lk);
      if (stop_) return;
      // Control messages apply in order; Forwards waiting behind them join one batch.
      size_t rows = 0, decode_rows = 0;
      while (!queue_.empty()) {
        auto& front = queue_.front();
        if (auto* s = std::get_if<transport::StartRequest>(&front)) {
          if (!batch.empty()) break;
          for (uint32_t seq : s->seq_ids) {
            SeqSampler& ss = samplers_[seq];
            engine::SamplerParams p;
            p.temperature = s->sampling.temperature;
            p.top_k = s->sampling.top_k;
            p.top_p = s->sampling.top_p;
            p.min_p = s->sampling.min_p;
            p.repeat_penalty = s->sampling.repeat_penalty;
            p.repeat_last_n = s->sampling.repeat_last_n;
            p.seed = s->sampling.seed;
            try {
              ss.sampler = std::make_unique<engine::Sampler>(p);
              // A resumed request: a sampling draw takes one RNG value per token, so skipping the
              // draws of the tokens sampled before gives the stream an uninterrupted run has.
              if (p.temperature > 0) ss.sampler->rng().discard(s->tokens_sampled);
            } catch (const std::exception& e) {
              emit_(transport::Error{transport::ErrorCode::bad_request,
                                     "request " + std::to_string(s->request_id) + ": " + e.what()});
            }
            ss.history = s->history;
          }
        } else if (auto* c = std::get_if<transport::ClearSequence>(&front)) {
          if (!batch.empty()) break;
          for (uint32_t seq : c->seq_ids) {
            ctx_->clear_seq(static_cast<int32_t>(seq));
            samplers_.erase(seq);
            live_.erase(seq);
            round_of_.erase(seq);
          }
          std::lock_guard<std::mutex> slk(stats_mu_);
          stats_.kv_bytes = ctx_->kv_bytes();
        } else {
          if (batch.empty()) order_waiting();  // may change what is at the front
          auto& f = std::get<transport::Forward>(queue_.front());
          const size_t n = f.seq_ids.size();
          if (!batch.empty() && rows + n > static_cast<size_t>(opts_.max_batch_rows)) break;
          if (n == 1 && opts_.n_stages > 1 && live_.size() > 1) {
            // A group per stage: ceil(live / n_stages) decode steps per batch (prompt chunks are
            // never held back, and count for nothing here).
            const size_t group = (live_.size() + static_cast<size_t>(opts_.n_stages) - 1) / static_cast<size_t>(opts_.n_stages);
            if (decode_rows >= group) break;
            ++decode_rows;
          }
          rows += n;
          batch.push_back(std::move(f));
        }
        queue_.pop_front();
      }
    }
    if (!batch.empty()) {
      if (batch.size() > max_batch_msgs_.load()) max_batch_msgs_.store(batch.size());
      ++rounds_;
      for (const auto& f : batch)
        if (f.want_logits && !f.seq_ids.empty()) round_of_[f.seq_ids[0]] = rounds_;
      const auto t0 = std::chrono::steady_clock::now();
      run_batch(batch);
      last_batch_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }
}

bool StageRunner::is_decode_step(const transport::Forward& f) {
  return !f.draft.empty() || (f.seq_ids.size() == 1 && f.want_logits);
}

void StageRunner::gather(std::unique_lock<std::mutex>& lk) {
  // The decode steps of one round come back one message at a time: the coordinator answers each
  // sampled token as it handles it, and a batch started on the first would run the streams in
  // fragments (4 streams in batches of about 2 rows, at half the speed of one batch of 4). So
  // while only decode steps wait, the stage waits a moment (by default at most 5 % of the last
  // batch's time and 2 ms) for the rest of the round. On a lone stage the round is every live
  // sequence. Over several stages the streams form groups that occupy different stages, and the
  // round is the first waiting step's group: the live sequences whose last logits-bearing
  // Forward ran in the same batch here. They went through the pipeline together and come back
  // together; another group is not waited for. A ClearSequence counts as its sequence's step.
  if (live_.size() < 2 || last_batch_seconds_ <= 0) return;
  const bool one_stage = opts_.n_stages <= 1;
  auto ready = [&] {
    // The first waiting decode step's round; a prompt chunk makes a batch worth running now.
    std::optional<uint64_t> round;
    for (const auto& m : queue_) {
      const auto* f = std::get_if<transport::Forward>(&m);
      if (!f) continue;
      if (!is_decode_step(*f) || f->seq_ids.empty()) return true;  // (a malformed one fails at once)
      if (one_stage) {
        round = 0;
        continue;
      }
      auto it = round_of_.find(f->seq_ids[0]);
      if (it == round_of_.end()) return true;  // no round to wait for
      if (!round) round = it->second;
    }
    if (!round) return false;  // only control messages: nothing to gather yet
    auto in_round = [&](uint32_t seq) {
      if (one_stage) return true;
      auto it = round_of_.find(seq);
      return it != round_of_.end() && it->second == *round;
    };
    size_t n = 0, want = 0;
    for (const auto& m : queue_) {
      if (const auto* f = std::get_if<transport::Forward>(&m)) n += in_round(f->seq_ids[0]) ? 1 : 0;
      else if (const auto* c = std::get_if<transport::ClearSequence>(&m))
        for (uint32_t seq : c->seq_ids) n += in_round(seq) ? 1 : 0;
    }
    for (uint32_t seq : live_) want += in_round(seq) ? 1 : 0;
    return n >= want;
  };
  if (ready()) return;
  const auto grace = std::chrono::duration<double>(std::min(opts_.gather_max_seconds, opts_.gather_fraction * last_batch_seconds_));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(grace);
  cv_.wait_until(lk, deadline, [&] { return stop_ || ready(); });
}

void StageRunner::order_waiting() {
  // The Forwards waiting at the front of the queue, up to the first control message (nothing
  // moves across one), are reordered so that a long prompt cannot hold up the other streams: all
  // of a prompt's chunks are queued at once, and in arrival order every decode step behind them
  // would wait until the whole prompt had been read. Decode steps (one row, or a row with its
  // drafts) go first, as many as this batch takes for its group; then prompt chunks round-robin
  // over the requests reading one (every first chunk, then every second one, ...); then the
  // decode steps held for a later batch. One request's Forwards never change order.
  size_t end = 0;
  while (end < queue_.size() && std::holds_alternative<transport::Forward>(queue_[end])) ++end;
  if (end < 2) return;
  const size_t group = opts_.n_stages > 1 && live_.size() > 1
                           ? (live_.size() + static_cast<size_t>(opts_.n_stages) - 1) / static_cast<size_t>(opts_.n_stages)
                           : end;
  struct Key {
    int cls;        // 0 decode now, 1 prompt chunk, 2 decode later
    size_t round;   // a chunk's index among its request's chunks here
    size_t index;   // arrival order
  };
  std::vector<Key> keys(end);
  std::map<uint64_t, size_t> chunks;  // request -> chunks seen so far
  size_t decode = 0;
  for (size_t i = 0; i < end; ++i) {
    const auto& f = std::get<transport::Forward>(queue_[i]);
    const bool prompt_chunk = !is_decode_step(f);
    auto seen = chunks.find(f.request_id);
    if (prompt_chunk || seen != chunks.end()) {  // behind its own chunks it stays a chunk in order
      const size_t k = seen == chunks.end() ? 0 : seen->second;
      chunks[f.request_id] = k + 1;
      keys[i] = {1, k, i};
    } else {
      keys[i] = {decode < group ? 0 : 2, 0, i};
      decode += f.seq_ids.size() == 1 ? 1 : 0;
    }
  }
  std::vector<size_t> order(end);
  for (size_t i = 0; i < end; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(keys[a].cls, keys[a].round, keys[a].index) < std::tie(keys[b].cls, keys[b].round, keys[b].index);
  });
  bool moved = false;
  for (size_t i = 0; i < end; ++i) moved |= order[i] != i;
  if (!moved) return;
  std::vector<std::variant<transport::Forward, transport::StartRequest, transport::ClearSequence>> run;
  run.reserve(end);
  for (size_t i : order) run.push_back(std::move(queue_[i]));
  for (size_t i = 0; i < end; ++i) queue_[i] = std::move(run[i]);
}

void StageRunner::run_batch(std::vector<transport::Forward>& batch) {
  const engine::Hparams& hp = model_->hp();
  const bool first = model_->has_embed(), last = model_->has_head();
  std::vector<engine::BatchRow> rows;
  std::vector<float> hidden;
  // Check each message on its own, so one bad request fails alone.
  std::vector<transport::Forward*> ok;
  for (auto& f : batch) {
    const size_t n = f.seq_ids.size();
    std::string err;
    if (n == 0 || f.positions.size() != n) err = "malformed forward (row lists differ)";
    else if (!f.draft.empty() && f.draft.size() >= n) err = "malformed forward (drafts need a row before them)";
    else if (first && f.tokens.size() != n) err = "first stage needs one token per row";
    else if (!first && (f.hidden.shape.size() != 2 || f.hidden.shape[0] != n || f.hidden.shape[1] != hp.n_embd))
      err = "hidden state shape does not match this model";
    if (!err.empty()) {
      emit_(transport::Error{transport::ErrorCode::bad_request, "request " + std::to_string(f.request_id) + ": " + err});
      continue;
    }
    ok.push_back(&f);
  }
  for (auto* f : ok) {
    const size_t n = f->seq_ids.size();
    for (uint32_t seq : f->seq_ids) live_.insert(seq);
    // Positions below what this stage holds: drop the rest first (rejected drafts, a re-read).
    const int32_t seq0 = static_cast<int32_t>(f->seq_ids[0]);
    if (f->positions[0] < ctx_->seq_len(seq0)) ctx_->truncate_seq(seq0, f->positions[0]);
    // Logits for the last row, or for the row before the drafts and every draft row.
    const size_t n_logits = f->want_logits ? f->draft.size() + 1 : 0;
    for (size_t i = 0; i < n; ++i) {
      const bool want = last ? i + n_logits >= n : true;
      rows.push_back({static_cast<int32_t>(f->seq_ids[i]), f->positions[i], first ? f->tokens[i] : 0, want});
    }
    if (!first) {
      std::vector<float> h = transport::decode_activations(f->hidden);
      hidden.insert(hidden.end(), h.begin(), h.end());
    }
  }
  if (rows.empty()) return;
  std::vector<float> out;
  try {
    const auto t0 = std::chrono::steady_clock::now();
    ctx_->forward(rows, first ? nullptr : hidden.data(), out);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard<std::mutex> slk(stats_mu_);
    stats_.busy_seconds += dt;
    ++stats_.passes;
    stats_.kv_bytes = ctx_->kv_bytes();
  } catch (const std::exception& e) {
    for (auto* f : ok)
      emit_(transport::Error{transport::ErrorCode::bad_request, "request " + std::to_string(f->request_id) + ": " + e.what()});
    return;
  }
  // Hand each message's result on, in order.
  size_t at = 0;
  for (auto* f : ok) {
    const size_t n = f->seq_ids.size();
    if (!last) {
      transport::Forward next;
      next.request_id = f->request_id;
      next.seq_ids = f->seq_ids;
      next.positions = f->positions;
      next.want_logits = f->want_logits;
      next.last_chunk = f->last_chunk;
      next.draft = f->draft;
      next.hidden = transport::encode_activations(std::span<const float>(out.data() + at * hp.n_embd, n * hp.n_embd),
                                                  {static_cast<uint32_t>(n), static_cast<uint32_t>(hp.n_embd)},
                                                  opts_.activation);
      at += n;
      emit_(std::move(next));
      continue;
    }
    if (!f->want_logits) continue;
    const uint32_t seq = f->seq_ids.back();
    const size_t k = f->draft.size();
    std::span<const float> logits(out.data() + at * hp.n_vocab, (k + 1) * static_cast<size_t>(hp.n_vocab));
    at += k + 1;
    if (!opts_.dump_logits_dir.empty()) {
      const size_t first_row = f->seq_ids.size() - k - 1;
      const std::string path = opts_.dump_logits_dir + "/r" + std::to_string(f->request_id) + "-p" +
                               std::to_string(f->positions[first_row]) + ".f32";
      std::ofstream out_f(path, std::ios::binary);
      out_f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    }
    SeqSampler& ss = samplers_[seq];
    if (!ss.sampler) ss.sampler = std::make_unique<engine::Sampler>(engine::SamplerParams{0.0f});
    // The penalty's history: the prompt (from StartRequest) plus every token sampled here.
    std::vector<int32_t> tokens;
    if (k == 0) {
      tokens.push_back(ss.sampler->sample(logits, ss.history));
    } else {
      engine::Draft d;
      d.tokens = f->draft;
      try {
        tokens = engine::verify(*ss.sampler, logits, static_cast<size_t>(hp.n_vocab), ss.history, d);
      } catch (const std::exception& e) {
        emit_(transport::Error{transport::ErrorCode::bad_request, "request " + std::to_string(f->request_id) + ": " + e.what()});
        continue;
      }
    }
    ss.history.insert(ss.history.end(), tokens.begin(), tokens.end());
    transport::SampledTokens st;
    st.request_id = f->request_id;
    st.seq_ids.assign(tokens.size(), seq);  // (sequence, token) pairs in order
    st.tokens = tokens;
    if (opts_.return_logits) {
      st.has_logits = true;
      const auto first_row = logits.subspan(0, static_cast<size_t>(hp.n_vocab));
      st.logits = transport::encode_activations(first_row, {1, static_cast<uint32_t>(hp.n_vocab)}, transport::DType::f32);
    }
    emit_(std::move(st));
  }
}

}  // namespace zen::node
