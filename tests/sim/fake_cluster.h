// An in-process zen cluster for tests: one Coordinator and N Workers in this process, each worker
// joined to the coordinator by a transport::FakeLink pair (latency, bandwidth, drops, stalls and
// disconnects injectable per direction), no sockets. Requests go straight to the coordinator's
// InferenceService::submit. Every stage decode pass is timed at the coordinator (Forward sent to
// a worker -> its output back), so a slow node shows in stage_ms().
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "node/coordinator.h"
#include "node/worker.h"
#include "transport/fake_link.h"
#include "transport/keys.h"

namespace zen::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A link that passes everything to another; the wrappers below override what they change.
class ForwardingLink : public transport::Link {
 public:
  explicit ForwardingLink(std::shared_ptr<transport::Link> inner) : inner_(std::move(inner)) {}
  void start(transport::LinkHandlers h) override { inner_->start(std::move(h)); }
  transport::SendResult send(const transport::Message& m) override { return inner_->send(m); }
  void close(const std::string& reason) override { inner_->close(reason); }
  void pause_receive(bool p) override { inner_->pause_receive(p); }
  transport::LinkStats stats() const override { return inner_->stats(); }
  bool is_open() const override { return inner_->is_open(); }
  const transport::PublicKey& peer_key() const override { return inner_->peer_key(); }
  std::string peer_address() const override { return inner_->peer_address(); }

 protected:
  std::shared_ptr<transport::Link> inner_;
};

// Wraps a link and times each Forward it sends against the next output that comes back (a
// worker answers its Forwards in order). Decode passes only: one row, the prompt goes alone.
class TimedLink final : public ForwardingLink {
 public:
  using ForwardingLink::ForwardingLink;
  void start(transport::LinkHandlers h) override {
    auto on_message = std::move(h.on_message);
    h.on_message = [this, on_message](transport::Message&& m) {
      if (std::holds_alternative<transport::Forward>(m) || std::holds_alternative<transport::SampledTokens>(m)) {
        std::lock_guard lk(mu_);
        if (!sent_.empty()) {
          const auto [t0, rows] = sent_.front();
          sent_.pop_front();
          if (rows == 1) passes_ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        }
      }
      on_message(std::move(m));
    };
    inner_->start(std::move(h));
  }
  transport::SendResult send(const transport::Message& m) override {
    if (const auto* f = std::get_if<transport::Forward>(&m)) {
      std::lock_guard lk(mu_);
      sent_.push_back({Clock::now(), f->seq_ids.size()});
    }
    return inner_->send(m);
  }
  // Median time of a one-row pass through this worker's stage, link time included.
  double median_pass_ms() const {
    std::lock_guard lk(mu_);
    std::vector<double> v = passes_ms_;
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

 private:
  using Clock = std::chrono::steady_clock;
  mutable std::mutex mu_;
  std::deque<std::pair<Clock::time_point, size_t>> sent_;
  std::vector<double> passes_ms_;
};

// Holds every Forward a worker receives for `delay` before the worker sees it, one after another
// on the worker's own delivery thread: what a slower CPU looks like from outside.
class SlowNodeLink final : public ForwardingLink {
 public:
  SlowNodeLink(std::shared_ptr<transport::Link> inner, std::chrono::milliseconds delay) : ForwardingLink(std::move(inner)), delay_(delay) {}
  void start(transport::LinkHandlers h) override {
    auto on_message = std::move(h.on_message);
    h.on_message = [this, on_message](transport::Message&& m) {
      if (std::holds_alternative<transport::Forward>(m)) std::this_thread::sleep_for(delay_);
      on_message(std::move(m));
    };
    inner_->start(std::move(h));
  }

 private:
  std::chrono::milliseconds delay_;
};

// Turns every stage this worker reports loaded into a refusal, as a node that runs out of memory
// mapping its slice answers (the worker itself does not know).
class RefuseStageLink final : public ForwardingLink {
 public:
  using ForwardingLink::ForwardingLink;
  transport::SendResult send(const transport::Message& m) override {
    if (const auto* r = std::get_if<transport::StageReady>(&m); r && r->ok && r->message != "spare")
      return inner_->send(transport::StageReady{r->plan_id, false, "cannot map the slice: out of memory (injected)"});
    return inner_->send(m);
  }
};

struct FakeNodeSpec {
  transport::FakeLinkConditions to_worker, to_coordinator;  // per direction
  std::chrono::milliseconds compute_delay{0};              // SlowNodeLink when > 0
  bool has_model = true;       // false: no local copy, its slice comes from its cache or by transfer
  bool refuse_stage = false;   // RefuseStageLink: every stage it is given fails to load
};

struct CompletionResult {
  std::vector<int32_t> tokens;
  std::string finish_reason;  // "stop", "length", "error", ...; "timeout" when no final event came
  std::string error;
  double seconds = 0;
};

class FakeCluster {
 public:
  // `split`: layers per stage, coordinator first, then the workers in order (names w1, w2, ...).
  FakeCluster(const std::string& model, const fs::path& dir, const std::vector<FakeNodeSpec>& workers,
              const std::vector<int>& split)
      : dir_(dir) {
    fs::create_directories(dir);
    const std::string secret = transport::format_cluster_secret(transport::generate_cluster_secret());
    auto config = [&](const std::string& name, node::Role role) {
      node::NodeConfig c;
      c.name = name;
      c.role = role;
      c.listen = {"127.0.0.1", 0};
      c.http = std::nullopt;
      c.data_dir = dir / name;
      c.key_file = dir / (name + ".key");
      c.cluster_secret = secret;
      c.model = model;
      c.threads = 1;
      c.discovery.enabled = false;
      return c;
    };
    node::NodeConfig cc = config("coord", node::Role::coordinator);
    cc.layer_split = split;
    cc.limits.step_timeout = std::chrono::milliseconds(1000);  // lost messages: re-read after 1 s
    const transport::KeyPair ck = transport::load_or_create_key_file(cc.key_file);
    coordinator_ = std::make_unique<node::Coordinator>(cc);
    for (size_t i = 0; i < workers.size(); ++i) {
      const FakeNodeSpec& spec = workers[i];
      node::NodeConfig wc = config("w" + std::to_string(i + 1), node::Role::worker);
      if (!spec.has_model) wc.model.clear();
      const transport::KeyPair wk = transport::load_or_create_key_file(wc.key_file);
      // A slow node gets a delivery thread of its own: its delay holds up nobody else.
      auto& io = spec.compute_delay.count() > 0 ? slow_io_.emplace_back(std::make_unique<transport::IoThread>())->context()
                                                : io_.context();
      transport::FakeLinkPair p = transport::make_fake_link_pair(io, spec.to_worker, spec.to_coordinator, ck.public_key, wk.public_key);
      coord_ends_.push_back(p.a);
      worker_ends_.push_back(p.b);
      timed_.push_back(std::make_shared<TimedLink>(p.a));
      std::shared_ptr<transport::Link> worker_link = p.b;
      if (spec.compute_delay.count() > 0) worker_link = std::make_shared<SlowNodeLink>(p.b, spec.compute_delay);
      if (spec.refuse_stage) worker_link = std::make_shared<RefuseStageLink>(worker_link);
      workers_.push_back(std::make_unique<node::Worker>(wc));
      node::Worker* w = workers_.back().get();
      threads_.emplace_back([w, worker_link] { w->serve(worker_link); });
      coordinator_->add_link(timed_.back());
    }
  }

  ~FakeCluster() {
    for (auto& l : worker_ends_) l->disconnect("test over");
    for (auto& t : threads_) t.join();
    workers_.clear();
    coordinator_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  node::Coordinator& coordinator() { return *coordinator_; }
  transport::FakeLink& worker_end(size_t i) { return *worker_ends_.at(i); }
  transport::FakeLink& coordinator_end(size_t i) { return *coord_ends_.at(i); }
  double stage_ms(size_t worker) const { return timed_.at(worker)->median_pass_ms(); }
  bool wait_ready(int stages, std::chrono::milliseconds t = 20000ms) { return coordinator_->wait_ready(stages, t); }

  // Greedy completion; gives up after `timeout` (finish_reason "timeout") and cancels.
  CompletionResult complete(const std::vector<int32_t>& prompt, int max_tokens, std::chrono::milliseconds timeout = 20000ms) {
    struct State {
      std::mutex mu;
      std::condition_variable cv;
      CompletionResult r;
      bool done = false;
    };
    auto st = std::make_shared<State>();
    node::CompletionRequest req;
    req.prompt = prompt;
    req.max_tokens = max_tokens;
    req.sampling.temperature = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t id = coordinator_->submit(req, [st](const node::TokenEvent& ev) {
      std::lock_guard lk(st->mu);
      if (ev.token >= 0) st->r.tokens.push_back(ev.token);
      if (ev.done) {
        st->r.finish_reason = ev.finish_reason;
        st->r.error = ev.error;
        st->done = true;
        st->cv.notify_all();
      }
      return true;
    });
    std::unique_lock lk(st->mu);
    if (!st->cv.wait_for(lk, timeout, [&] { return st->done; })) {
      lk.unlock();
      coordinator_->cancel(id);
      lk.lock();
      st->cv.wait_for(lk, 5000ms, [&] { return st->done; });
      st->r.finish_reason = "timeout";
    }
    st->r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st->r;
  }

 private:
  fs::path dir_;
  transport::IoThread io_;  // delivers every fake link's messages (but a slow node's)
  std::vector<std::unique_ptr<transport::IoThread>> slow_io_;
  std::unique_ptr<node::Coordinator> coordinator_;
  std::vector<std::unique_ptr<node::Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<transport::FakeLink>> coord_ends_, worker_ends_;
  std::vector<std::shared_ptr<TimedLink>> timed_;
};

}  // namespace zen::test
