// The discrete-event pipeline simulation. Resources in pipeline order: the coordinator's link into
// stage 0, stage 0, the link to stage 1, ..., the last stage, the link back to the coordinator.
// Each resource serves one batch at a time; sequences waiting at a resource when it frees up go
// through together (one pass over the weights, one message), prompt chunks go alone.
#include <algorithm>
#include <deque>
#include <limits>
#include <queue>
#include <stdexcept>

#include "sim/simulate.h"

namespace zen::sim {

namespace {

struct Batch {
  std::vector<int> requests;  // decode: one sequence each; prefill: exactly one
  int tokens = 0;             // prompt chunk length, or the number of sequences when decoding
  bool prefill = false;
  bool last_chunk = false;
};

struct Event {
  double t;
  uint64_t seq;  // FIFO among equal times
  int resource;
  int batch;     // index into the batch store; -1: the resource is free again
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

class Simulator {
 public:
  Simulator(const partition::ModelCost& m, const partition::Cluster& c, const std::vector<partition::Stage>& st,
            const Workload& w, const partition::PlanOptions& o)
      : m_(m), c_(c), st_(st), w_(w), o_(o), n_res_(static_cast<int>(2 * st.size() + 1)) {
    queue_.resize(size_t(n_res_));
    busy_until_.assign(size_t(n_res_), 0);
    use_.resize(size_t(n_res_));
    passes_.assign(size_t(n_res_), 0);
    const int coord = c.coordinator;
    for (int r = 0; r < n_res_; ++r) {
      ResourceUse& u = use_[size_t(r)];
      if (r % 2 == 1) {
        u.is_stage = true;
        u.stage = r / 2;
        u.name = "stage " + std::to_string(u.stage) + " (" + dev(st[size_t(u.stage)].device).name + ")";
      } else {
        const int from = r == 0 ? coord : st[size_t(r / 2 - 1)].device;
        const int to = r == n_res_ - 1 ? coord : st[size_t(r / 2)].device;
        u.stage = r == 0 ? 0 : r / 2 - 1;
        u.name = "link " + dev(from).name + "->" + dev(to).name;
        const bool hidden = r != 0 && r != n_res_ - 1;
        if (hidden) routes_.push_back(partition::hidden_route(c, from, to));
        else if (from != to) routes_.push_back({partition::link_between(c, from, to)});
        else routes_.emplace_back();
        if (hidden && routes_.back().size() == 2) u.name = "link " + dev(from).name + "->" + dev(coord).name + "->" + dev(to).name;
      }
    }
  }

  SimResult run() {
    ttft_.assign(size_t(w_.requests), 0);
    done_.assign(size_t(w_.requests), 0);
    generated_.assign(size_t(w_.requests), 0);
    const int chunks = (w_.prompt_tokens + o_.prefill_chunk - 1) / o_.prefill_chunk;
    const int chunk = (w_.prompt_tokens + chunks - 1) / chunks;
    for (int r = 0; r < w_.requests; ++r)
      for (int i = 0, left = w_.prompt_tokens; i < chunks; ++i, left -= chunk)
        arrive(0, 0, store(Batch{{r}, std::min(chunk, left), true, i + 1 == chunks}));
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      ++result_.events;
      if (e.batch < 0) {
        start(e.resource, e.t);
      } else if (e.resource == n_res_) {
        at_coordinator(e.t, e.batch);
      } else {
        queue_[size_t(e.resource)].push_back(e.batch);
        if (busy_until_[size_t(e.resource)] <= e.t) start(e.resource, e.t);
      }
    }
    return finish();
  }

 private:
  const partition::Device& dev(int d) const { return c_.devices[size_t(d)]; }

  int store(Batch b) {
    batches_.push_back(std::move(b));
    return static_cast<int>(batches_.size() - 1);
  }

  void arrive(double t, int resource, int batch) { events_.push(Event{t, seq_++, resource, batch}); }

  // The resource is free at t: serve what waits (decode sequences merged into one batch).
  void start(int r, double t) {
    auto& q = queue_[size_t(r)];
    if (q.empty() || busy_until_[size_t(r)] > t) return;
    int id = q.front();
    q.pop_front();
    if (!batches_[size_t(id)].prefill) {
      Batch merged = batches_[size_t(id)];
      for (auto it = q.begin(); it != q.end();) {
        const Batch& b = batches_[size_t(*it)];
        if (b.prefill) {
          ++it;
          continue;
        }
        merged.requests.insert(merged.requests.end(), b.requests.begin(), b.requests.end());
        it = q.erase(it);
      }
      merged.tokens = static_cast<int>(merged.requests.size());
      id = store(std::move(merged));
    }
    const Batch& b = batches_[size_t(id)];
    double busy = 0, deliver = 0;
    if (r % 2 == 1) {
      const partition::Stage& s = st_[size_t(r / 2)];
      busy = deliver = b.prefill ? partition::stage_prefill_s(m_, c_, s, b.tokens, o_)
                                 : partition::stage_step_s(m_, c_, s, b.tokens, o_);
    } else {
      const bool hidden = r != 0 && r != n_res_ - 1;
      const int tokens = r == n_res_ - 1 && b.prefill ? 1 : b.tokens;  // prefill returns one sampled token
      const uint64_t payload = (hidden ? m_.hidden_bytes_per_token : partition::kTokenBytes) * uint64_t(tokens);
      // A relayed hop crosses two links one after the other; the busier one limits the rate.
      for (const partition::Link& l : routes_[size_t(r / 2)]) {
        const bool ideal = l.bandwidth_bytes_s == std::numeric_limits<double>::infinity() && l.latency_s == 0;
        busy = std::max(busy, ideal ? 0 : partition::message_busy_s(l, payload));
        deliver += ideal ? 0 : partition::message_s(l, payload);
      }
    }
    use_[size_t(r)].busy_s += busy;
    use_[size_t(r)].mean_batch += b.prefill ? 1 : b.tokens;
    passes_[size_t(r)] += 1;
    busy_until_[size_t(r)] = t + busy;
    // A prompt chunk that is not the last one ends at the last stage: only the last yields a token.
    const bool ends = b.prefill && !b.last_chunk && r == n_res_ - 2;
    if (!ends) arrive(t + deliver, r + 1, id);
    events_.push(Event{t + busy, seq_++, r, -1});
  }

  void at_coordinator(double t, int id) {
    Batch next;
    for (int req : batches_[size_t(id)].requests) {
      token_times_.push_back(t);
      if (generated_[size_t(req)] == 0) ttft_[size_t(req)] = t;
      if (++generated_[size_t(req)] < w_.gen_tokens)
        next.requests.push_back(req);
      else
        done_[size_t(req)] = t;
    }
    if (next.requests.empty()) return;
    next.tokens = static_cast<int>(next.requests.size());
    arrive(t, 0, store(std::move(next)));
  }

  SimResult finish() {
    SimResult& res = result_;
    double first_ttft = 1e300;
    for (int r = 0; r < w_.requests; ++r) {
      res.makespan_s = std::max(res.makespan_s, done_[size_t(r)]);
      res.mean_ttft_s += ttft_[size_t(r)] / w_.requests;
      res.max_ttft_s = std::max(res.max_ttft_s, ttft_[size_t(r)]);
      first_ttft = std::min(first_ttft, ttft_[size_t(r)]);
      if (w_.gen_tokens > 1)
        res.single_tokens_per_s += (w_.gen_tokens - 1) / (done_[size_t(r)] - ttft_[size_t(r)]) / w_.requests;
    }
    const double total = double(w_.requests) * w_.gen_tokens;
    res.aggregate_tokens_per_s = total / res.makespan_s;
    if (w_.gen_tokens > 1) res.decode_tokens_per_s = (total - w_.requests) / (res.makespan_s - first_ttft);
    double last_ttft = 0, first_done = 1e300;
    for (int r = 0; r < w_.requests; ++r) {
      last_ttft = std::max(last_ttft, ttft_[size_t(r)]);
      first_done = std::min(first_done, done_[size_t(r)]);
    }
    // Tokens strictly after the last first token up to the first finish, over that window.
    size_t in_window = 0;
    for (double t : token_times_) in_window += t > last_ttft && t <= first_done;
    if (in_window >= 2 && first_done > last_ttft) res.steady_tokens_per_s = double(in_window) / (first_done - last_ttft);
    for (size_t r = 0; r < use_.size(); ++r) {
      use_[r].utilization = use_[r].busy_s / res.makespan_s;
      if (passes_[r] > 0) use_[r].mean_batch /= passes_[r];
      if (use_[r].utilization > use_[size_t(res.busiest)].utilization) res.busiest = static_cast<int>(r);
    }
    res.resources = use_;
    return res;
  }

  const partition::ModelCost& m_;
  const partition::Cluster& c_;
  const std::vector<partition::Stage>& st_;
  Workload w_;
  partition::PlanOptions o_;
  int n_res_;
  std::vector<std::vector<partition::Link>> routes_;  // the even resources in order: the links each crosses
  std::vector<std::deque<int>> queue_;
  std::vector<double> busy_until_;
  std::vector<ResourceUse> use_;
  std::vector<double> passes_;
  std::vector<Batch> batches_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  uint64_t seq_ = 0;
  std::vector<double> ttft_, done_;
  std::vector<double> token_times_;  // every token's arrival at the coordinator
  std::vector<int> generated_;
  SimResult result_;
};

}  // namespace

partition::PlanOptions plan_options_for(const Workload& w) {
  partition::PlanOptions o;
  o.prompt_tokens = w.prompt_tokens;
  o.gen_tokens = w.gen_tokens;
  o.n_streams = w.requests;
  o.kv_tokens = static_cast<uint64_t>(w.prompt_tokens) + static_cast<uint64_t>(w.gen_tokens);
  return o;
}

SimResult simulate(const partition::ModelCost& m, const partition::Cluster& c,
                   const std::vector<partition::Stage>& stages, const Workload& w, partition::PlanOptions o) {
  if (stages.empty()) throw std::invalid_argument("simulate: the plan has no stages");
  if (w.requests < 1 || w.prompt_tokens < 1 || w.gen_tokens < 1)
    throw std::invalid_argument("simulate: requests, prompt tokens and generated tokens must each be >= 1");
  if (w.requests > 100000 || static_cast<int64_t>(w.requests) * w.gen_tokens > 100000000)
    throw std::invalid_argument("simulate: requests x generated tokens is too large to simulate (max 1e8)");
  o.prompt_tokens = w.prompt_tokens;
  o.gen_tokens = w.gen_tokens;
  if (o.prefill_chunk < 1) throw std::invalid_argument("simulate: prefill_chunk must be >= 1");
  return Simulator(m, c, stages, w, o).run();
}

}  // namespace zen::sim
