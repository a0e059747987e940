#include "transport/fake_link.h"

#include <deque>
#include <mutex>
#include <optional>
#include <random>

#include "transport/codec.h"

namespace zen::transport {

using Clock = std::chrono::steady_clock;

// State shared by the two ends. Direction d carries messages sent by end d.
class FakeWire : public std::enable_shared_from_this<FakeWire> {
 public:
  struct Pending {
    Clock::time_point arrival;
    size_t bytes = 0;
    std::vector<std::byte> encoded;  // serialize mode
    std::optional<Message> message;  // otherwise
    std::optional<std::string> goodbye;
  };
  struct Direction {
    FakeLinkConditions cond;
    std::deque<Pending> pending;
    Clock::time_point next_free{}, last_arrival{};
    size_t in_flight = 0;
    bool sender_stalled = false, receiver_paused = false, timer_armed = false;
    uint64_t stall_gen = 0;
    std::unique_ptr<asio::steady_timer> stall_timer;
    std::mt19937_64 rng;
    std::unique_ptr<asio::steady_timer> timer;
  };
  struct End {
    LinkHandlers handlers;
    bool started = false, closed = false;
    std::optional<std::string> early_close;  // closed before start()
    PublicKey key{};
    LinkStats stats;
  };

  FakeWire(asio::io_context& io, const FakeLinkConditions& ab, const FakeLinkConditions& ba)
      : strand_(asio::make_strand(io)) {
    dir_[0].cond = ab;
    dir_[1].cond = ba;
    for (auto& d : dir_) {
      d.rng.seed(d.cond.seed);
      d.timer = std::make_unique<asio::steady_timer>(strand_);
      d.stall_timer = std::make_unique<asio::steady_timer>(strand_);
    }
  }

  SendResult send(int from, const Message& m) {
    Pending p;
    Direction& d = dir_[from];
    bool serialize;
    {
      std::lock_guard lk(mu_);
      serialize = d.cond.serialize;
    }
    if (serialize) {
      p.encoded = encode(m);
      p.bytes = p.encoded.size() + 21;  // as framed on a real link
    } else {
      p.message = m;
      p.bytes = 64;
    }
    std::lock_guard lk(mu_);
    if (ends_[from].closed) return SendResult::closed;
    if (d.in_flight > 0 && d.in_flight + p.bytes > d.cond.max_queue_bytes) {
      ++ends_[from].stats.sends_refused;
      return SendResult::queue_full;
    }
    ends_[from].stats.bytes_sent += p.bytes;
    ++ends_[from].stats.messages_sent;
    if (d.cond.drop_rate > 0 && std::uniform_real_distribution<double>(0, 1)(d.rng) < d.cond.drop_rate) {
      return SendResult::ok;  // lost on the wire
    }
    schedule(from, std::move(p));
    return SendResult::ok;
  }

  void close(int from, const std::string& reason) {
    std::lock_guard lk(mu_);
    if (ends_[from].closed) return;
    Pending p;
    p.goodbye = reason;
    schedule(from, std::move(p));
    report_close(from, "closed locally: " + reason);
  }

  void disconnect(const std::string& reason) {
    std::lock_guard lk(mu_);
    for (auto& d : dir_) {
      d.pending.clear();
      d.in_flight = 0;
      d.timer->cancel();
    }
    report_close(0, reason);
    report_close(1, reason);
  }

  void start(int end, LinkHandlers h) {
    asio::post(strand_, [self = shared_from_this(), end, h = std::move(h)]() mutable {
      std::unique_lock lk(self->mu_);
      End& e = self->ends_[end];
      e.handlers = std::move(h);
      e.started = true;
      if (e.early_close) {
        auto cb = std::move(e.handlers.on_close);
        e.handlers = {};
        std::string reason = *e.early_close;
        lk.unlock();
        if (cb) cb(reason);
        return;
      }
      lk.unlock();
      self->pump(1 - end);
    });
  }

  void set_hold(int dir, bool sender, bool on) {
    std::chrono::milliseconds timeout{0};
    uint64_t gen = 0;
    {
      std::lock_guard lk(mu_);
      Direction& d = dir_[dir];
      (sender ? d.sender_stalled : d.receiver_paused) = on;
      gen = ++d.stall_gen;
      if (sender && on) timeout = d.cond.stall_timeout;
    }
    asio::post(strand_, [self = shared_from_this(), dir, timeout, gen] {
      if (timeout.count() > 0) {
        auto& t = *self->dir_[dir].stall_timer;
        t.expires_after(timeout);
        t.async_wait([self, dir, timeout, gen](std::error_code ec) {
          bool still;
          {
            std::lock_guard lk(self->mu_);
            still = !ec && self->dir_[dir].stall_gen == gen && self->dir_[dir].sender_stalled;
          }
          if (still) {
            self->disconnect("read deadline: no frame from peer within " + std::to_string(timeout.count()) +
                             " ms (stalled peer)");
          }
        });
      }
      self->pump(dir);
    });
  }

  void set_conditions(int dir, const FakeLinkConditions& c) {
    std::lock_guard lk(mu_);
    dir_[dir].cond = c;
  }

  LinkStats stats(int end) {
    std::lock_guard lk(mu_);
    LinkStats s = ends_[end].stats;
    s.queued_bytes = dir_[end].in_flight;
    double rtt = static_cast<double>((dir_[0].cond.latency + dir_[1].cond.latency).count());
    s.rtt_us = s.rtt_us_smoothed = rtt;
    return s;
  }
  bool open(int end) {
    std::lock_guard lk(mu_);
    return !ends_[end].closed;
  }
  const PublicKey& key(int end) const { return ends_[end].key; }  // fixed at construction
  void set_key(int end, const PublicKey& k) { ends_[end].key = k; }

 private:
  // Caller holds mu_. Order is kept: an arrival is never earlier than the previous one.
  void schedule(int from, Pending p) {
    Direction& d = dir_[from];
    auto now = Clock::now();
    auto start = std::max(now, d.next_free);
    auto tx = d.cond.bandwidth_bytes_per_s > 0
                  ? std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(p.bytes) / d.cond.bandwidth_bytes_per_s))
                  : Clock::duration::zero();
    d.next_free = start + tx;
    p.arrival = std::max(d.next_free + d.cond.latency, d.last_arrival);
    d.last_arrival = p.arrival;
    d.in_flight += p.bytes;
    d.pending.push_back(std::move(p));
    asio::post(strand_, [self = shared_from_this(), from] { self->pump(from); });
  }

  // Caller holds mu_. Marks `end` closed and tells its handler (posted, on the strand).
  void report_close(int end, const std::string& reason) {
    End& e = ends_[end];
    if (e.closed) return;
    e.closed = true;
    if (!e.started) {
      e.early_close = reason;
      return;
    }
    auto cb = std::move(e.handlers.on_close);
    e.handlers = {};
    if (cb) asio::post(strand_, [cb = std::move(cb), reason] { cb(reason); });
  }

  // On the strand: delivers everything due in direction `from`, then waits for the next.
  void pump(int from) {
    Direction& d = dir_[from];
    int to = 1 - from;
    for (;;) {
      std::unique_lock lk(mu_);
      if (d.pending.empty() || d.sender_stalled || d.receiver_paused || !ends_[to].started || d.timer_armed) return;
      auto now = Clock::now();
      if (d.pending.front().arrival > now) {
        d.timer_armed = true;
        d.timer->expires_at(d.pending.front().arrival);
        d.timer->async_wait([self = shared_from_this(), from](std::error_code) {
          {
            std::lock_guard lk2(self->mu_);
            self->dir_[from].timer_armed = false;
          }
          self->pump(from);
        });
        return;
      }
      Pending p = std::move(d.pending.front());
      d.pending.pop_front();
      d.in_flight -= std::min(d.in_flight, p.bytes);
      End& dst = ends_[to];
      if (dst.closed) continue;
      if (p.goodbye) {
        report_close(to, "peer closed: " + *p.goodbye);
        continue;
      }
      dst.stats.bytes_received += p.bytes;
      ++dst.stats.messages_received;
      auto on_message = dst.handlers.on_message;
      lk.unlock();
      Message m;
      if (p.message) {
        m = std::move(*p.message);
      } else {
        DecodeResult r = decode(p.encoded);
        if (!r.ok()) {
          std::lock_guard lk2(mu_);
          report_close(to, "undecodable message: " + r.error);
          continue;
        }
        m = std::move(*r.message);
      }
      if (!on_message) continue;
      try {
        on_message(std::move(m));
      } catch (const std::exception& e) {
        std::lock_guard lk2(mu_);
        report_close(to, std::string("on_message handler threw: ") + e.what());
      }
    }
  }

  asio::strand<asio::io_context::executor_type> strand_;
  std::mutex mu_;
  Direction dir_[2];
  End ends_[2];
};

FakeLink::FakeLink(std::shared_ptr<FakeWire> wire, int end) : wire_(std::move(wire)), end_(end) {}
FakeLink::~FakeLink() = default;
void FakeLink::start(LinkHandlers handlers) { wire_->start(end_, std::move(handlers)); }
SendResult FakeLink::send(const Message& m) { return wire_->send(end_, m); }
void FakeLink::close(const std::string& reason) { wire_->close(end_, reason); }
void FakeLink::pause_receive(bool paused) { wire_->set_hold(1 - end_, false, paused); }
LinkStats FakeLink::stats() const { return wire_->stats(end_); }
bool FakeLink::is_open() const { return wire_->open(end_); }
const PublicKey& FakeLink::peer_key() const { return wire_->key(1 - end_); }
std::string FakeLink::peer_address() const { return end_ == 0 ? "fake:b" : "fake:a"; }
void FakeLink::set_conditions(const FakeLinkConditions& c) { wire_->set_conditions(end_, c); }
void FakeLink::stall(bool stalled) { wire_->set_hold(end_, true, stalled); }
void FakeLink::disconnect(const std::string& reason) { wire_->disconnect(reason); }

FakeLinkPair make_fake_link_pair(asio::io_context& io, const FakeLinkConditions& a_to_b,
                                 const FakeLinkConditions& b_to_a, const PublicKey& key_a, const PublicKey& key_b) {
  auto wire = std::make_shared<FakeWire>(io, a_to_b, b_to_a);
  wire->set_key(0, key_a);
  wire->set_key(1, key_b);
  return {std::make_shared<FakeLink>(wire, 0), std::make_shared<FakeLink>(wire, 1)};
}

}  // namespace zen::transport
