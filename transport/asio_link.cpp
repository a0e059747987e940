// AsioLink: one authenticated TCP connection. See asio_link.h for the threading
// and backpressure rules.
#include "transport/asio_link.h"

#include <atomic>
#include <cmath>
#include <deque>
#include <random>
#include <iostream>
#include <mutex>

#include "transport/codec.h"

namespace zen::transport {
namespace {

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

constexpr size_t kMaxFramesPerWrite = 64;

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The benchmark shaper of one direction: when each frame may be written (see LinkShape).
class Shaper {
 public:
  explicit Shaper(const LinkShape& s) : s_(s), rng_(s.seed) {}
  double release_time(size_t frame_bytes) {
    const double packets = std::ceil(static_cast<double>(frame_bytes) / 1448.0);
    double bytes = static_cast<double>(frame_bytes), recovery = 0;
    if (s_.loss > 0) {
      std::bernoulli_distribution lost(s_.loss);
      for (double i = 0; i < packets; ++i)
        if (lost(rng_)) bytes += 1448.0;
      if (bytes > static_cast<double>(frame_bytes)) recovery = std::max(4 * s_.latency_s, 0.010) + 2 * s_.latency_s;
    }
    const double depart = std::max(now_s(), wire_free_) + (s_.bandwidth_bytes_s > 0 ? bytes / s_.bandwidth_bytes_s : 0);
    wire_free_ = depart;
    // Frames keep their order: a recovered frame holds back the ones behind it, as TCP does.
    release_ = std::max(release_, depart + s_.latency_s + recovery);
    return release_;
  }

 private:
  LinkShape s_;
  std::mt19937_64 rng_;
  double wire_free_ = 0, release_ = 0;
};

std::optional<LinkShape> shape_for(const LinkOptions& o, const PublicKey& peer) {
  for (const PeerShape& p : o.bench_shapes)
    if (!p.peer || *p.peer == peer) return p.shape;
  return std::nullopt;
}

class AsioLink final : public Link, public std::enable_shared_from_this<AsioLink> {
 public:
  AsioLink(asio::ip::tcp::socket socket, std::unique_ptr<SecureChannel> channel, const PublicKey& peer,
           const LinkOptions& opts)
      : socket_(std::move(socket)),
        read_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()),
        keepalive_timer_(socket_.get_executor()),
        close_timer_(socket_.get_executor()),
        shape_timer_(socket_.get_executor()),
        channel_(std::move(channel)),
        opts_(opts),
        peer_(peer) {
    max_queue_ = std::max(opts_.max_send_queue_bytes, opts_.max_frame_bytes + kFrameHeaderBytes + kFrameOverhead);
    std::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    peer_addr_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
    if (auto sh = shape_for(opts_, peer_)) shaper_.emplace(*sh);
  }

  void start(LinkHandlers handlers) override {
    asio::post(socket_.get_executor(), [self = shared_from_this(), h = std::move(handlers)]() mutable {
      self->handlers_ = std::move(h);
      self->started_ = true;
      if (self->closed_) {  // closed before anyone listened: still report it once
        auto cb = std::move(self->handlers_.on_close);
        self->handlers_ = {};
        if (cb) cb(self->close_reason_);
        return;
      }
      self->arm_keepalive();
      self->read_next();
    });
  }

  SendResult send(const Message& m) override { return enqueue(m, false, false); }

  void close(const std::string& reason) override {
    asio::post(socket_.get_executor(), [self = shared_from_this(), reason] {
      if (self->closed_ || self->closing_) return;
      self->closing_ = true;
      self->local_reason_ = "closed locally: " + reason;
      self->enqueue(Goodbye{reason}, true, true);
      self->close_timer_.expires_after(std::chrono::seconds(1));
      self->close_timer_.async_wait([self](std::error_code ec) {
        if (!ec) self->fail(self->local_reason_ + " (goodbye not flushed in time)");
      });
    });
  }

  void pause_receive(bool paused) override {
    asio::post(socket_.get_executor(), [self = shared_from_this(), paused] {
      self->paused_ = paused;
      if (!paused && self->started_) self->read_next();
    });
  }

  LinkStats stats() const override {
    LinkStats s;
    s.bytes_sent = bytes_sent_;
    s.bytes_received = bytes_received_;
    s.messages_sent = messages_sent_;
    s.messages_received = messages_received_;
    s.queued_bytes = queued_bytes_atomic_;
    s.sends_refused = sends_refused_;
    s.rtt_us = rtt_us_;
    s.rtt_us_smoothed = rtt_us_smoothed_;
    s.bandwidth_bytes_s = bandwidth_;
    return s;
  }
  void probe_bandwidth(size_t bytes) override {
    // Within one frame, with room for the envelope.
    if (opts_.max_frame_bytes > 8192) bytes = std::min(bytes, opts_.max_frame_bytes - 8192);
    asio::post(socket_.get_executor(), [self = shared_from_this(), bytes] {  // ping_nonce_ lives on the io thread
      if (self->closed_ || self->closing_) return;
      self->probe_bytes_ = bytes;
      self->enqueue(Ping{kProbeBit | ++self->ping_nonce_, now_ns(), std::vector<std::byte>(bytes, std::byte{0x5a})}, false, false);
    });
  }
  bool is_open() const override { return !closed_ && !closing_; }
  const PublicKey& peer_key() const override { return peer_; }
  std::string peer_address() const override { return peer_addr_; }

 private:
  // ---- send side (any thread) ----
  SendResult enqueue(const Message& m, bool final, bool force) {
    if (!force && (closed_ || closing_)) return SendResult::closed;
    // The plaintext only lives until seal(): reuse one buffer per sending thread.
    thread_local std::vector<std::byte> plain;
    struct Trim {
      ~Trim() {
        if (plain.capacity() > (size_t{16} << 20)) std::vector<std::byte>().swap(plain);
      }
    } trim;
    std::vector<std::byte> frame;
    size_t msg_bytes;
    if (channel_->plaintext()) {
      encode_into(m, frame, kFrameHeaderBytes);
      msg_bytes = frame.size() - kFrameHeaderBytes;
    } else {
      encode_into(m, plain, 0);
      msg_bytes = plain.size();
    }
    if (msg_bytes > opts_.max_frame_bytes) return SendResult::too_large;
    size_t frame_bytes = kFrameHeaderBytes + msg_bytes + (channel_->plaintext() ? 0 : kFrameOverhead);
    std::lock_guard lk(send_mu_);
    if (send_closed_) return SendResult::closed;
    if (!force && queued_bytes_ > 0 && queued_bytes_ + frame_bytes > max_queue_) {
      ++sends_refused_;
      return SendResult::queue_full;
    }
    if (channel_->plaintext()) {
      channel_->seal_in_place(frame);
    } else {
      frame.reserve(frame_bytes);
      channel_->seal(plain, final, frame);
    }
    if (final) send_closed_ = true;  // nothing may follow the final frame
    queued_bytes_ += frame.size();
    queued_bytes_atomic_ = queued_bytes_;
    if (shaper_) release_.push_back(shaper_->release_time(frame.size()));
    queue_.push_back(std::move(frame));
    if (!write_posted_) {
      write_posted_ = true;
      asio::post(socket_.get_executor(), [self = shared_from_this()] { self->write_next(); });
    }
    return SendResult::ok;
  }

  // ---- io thread ----
  void write_next() {
    if (closed_) return;
    std::vector<asio::const_buffer> bufs;
    {
      std::lock_guard lk(send_mu_);
      if (queue_.empty()) {
        write_posted_ = false;
        if (closing_) {
          asio::post(socket_.get_executor(), [self = shared_from_this()] { self->fail(self->local_reason_); });
        }
        return;
      }
      writing_.clear();
      const double now = now_s();
      while (!queue_.empty() && writing_.size() < kMaxFramesPerWrite && (!shaper_ || release_.front() <= now)) {
        writing_.push_back(std::move(queue_.front()));
        queue_.pop_front();
        if (shaper_) release_.pop_front();
      }
      if (writing_.empty()) {  // shaped: the next frame is not due yet
        shape_timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(release_.front() - now)));
        shape_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
          if (!ec) self->write_next();
        });
        return;
      }
    }
    for (auto& f : writing_) bufs.push_back(asio::buffer(f));
    uint64_t gen = ++write_gen_;
    write_timer_.expires_after(opts_.read_timeout);
    write_timer_.async_wait([self = shared_from_this(), gen](std::error_code ec) {
      if (!ec && gen == self->write_gen_) {
        self->fail("write deadline: peer did not accept data for " + std::to_string(self->opts_.read_timeout.count()) +
                   " ms (stalled)");
      }
    });
    asio::async_write(socket_, bufs, [self = shared_from_this()](std::error_code ec, size_t n) {
      ++self->write_gen_;
      self->write_timer_.cancel();
      if (ec) {
        if (!self->closed_) self->fail("write failed: " + ec.message());
        return;
      }
      self->bytes_sent_ += n;
      self->messages_sent_ += self->writing_.size();
      {
        std::lock_guard lk(self->send_mu_);
        self->queued_bytes_ -= std::min(self->queued_bytes_, n);
        self->queued_bytes_atomic_ = self->queued_bytes_;
      }
      self->writing_.clear();
      self->write_next();
    });
  }

  void arm_read_deadline(const char* what) {
    uint64_t gen = ++read_gen_;
    read_timer_.expires_after(opts_.read_timeout);
    read_timer_.async_wait([self = shared_from_this(), gen, what](std::error_code ec) {
      if (!ec && gen == self->read_gen_) {
        self->fail(std::string("read deadline: no ") + what + " from peer within " +
                   std::to_string(self->opts_.read_timeout.count()) + " ms (stalled peer)");
      }
    });
  }

  void read_next() {
    if (closed_ || paused_ || reading_) return;
    reading_ = true;
    arm_read_deadline("frame");
    asio::async_read(socket_, asio::buffer(prefix_), [self = shared_from_this()](std::error_code ec, size_t n) {
      if (ec) return self->read_failed(ec, n, kFrameHeaderBytes, true);
      size_t len = 0;
      std::string err;
      if (!parse_frame_length(self->prefix_, self->channel_->max_body_bytes(), len, err)) return self->fail(err);
      self->body_.resize(len);
      self->arm_read_deadline("frame body");
      asio::async_read(self->socket_, asio::buffer(self->body_), [self](std::error_code ec2, size_t n2) {
        if (ec2) return self->read_failed(ec2, n2, self->body_.size(), false);
        self->frame_read();
      });
    });
  }

  void read_failed(std::error_code ec, size_t got, size_t want, bool at_prefix) {
    ++read_gen_;
    read_timer_.cancel();
    if (closed_) return;
    if (ec == asio::error::eof || ec == asio::error::connection_reset) {
      if (at_prefix && got == 0) {
        fail("peer closed the connection without a goodbye (stream truncated)");
      } else {
        fail("truncated frame: connection ended after " + std::to_string(got) + " of " + std::to_string(want) +
             (at_prefix ? " length bytes" : " body bytes"));
      }
      return;
    }
    fail("read failed: " + ec.message());
  }

  void frame_read() {
    ++read_gen_;
    read_timer_.cancel();
    reading_ = false;
    if (closed_) return;
    bytes_received_ += kFrameHeaderBytes + body_.size();
    DecodeResult d;
    bool final = false;
    DecodeLimits lim;
    lim.max_bytes = opts_.max_frame_bytes;
    if (channel_->plaintext()) {
      d = decode(body_, lim);
    } else {
      auto opened = channel_->open(prefix_, body_, plain_);
      if (!opened.ok) return fail(opened.error);
      final = opened.final;
      d = decode(plain_, lim);
    }
    if (!d.ok()) return fail("undecodable message: " + d.error);
    ++messages_received_;
    Message& m = *d.message;
    if (auto* ping = std::get_if<Ping>(&m)) {
      enqueue(Pong{ping->nonce, ping->sent_ns, now_ns()}, false, false);
    } else if (auto* pong = std::get_if<Pong>(&m)) {
      uint64_t now = now_ns();
      if ((pong->nonce & kProbeBit) && pong->ping_sent_ns <= now) {
        // The padding's transfer time: the round trip less what an empty ping takes (at least a
        // tenth of it, should the smoothed RTT be stale).
        const double rt = static_cast<double>(now - pong->ping_sent_ns) / 1e9;
        const double t = std::max(rt - rtt_us_smoothed_.load() / 1e6, rt / 10);
        if (t > 0) bandwidth_ = static_cast<double>(probe_bytes_.load()) / t;
      } else if (pong->ping_sent_ns <= now) {
        rtt_us_ = static_cast<double>(now - pong->ping_sent_ns) / 1000.0;
        double s = rtt_us_smoothed_;
        rtt_us_smoothed_ = s == 0 ? rtt_us_.load() : s + (rtt_us_ - s) / 8;
      }
    } else if (auto* bye = std::get_if<Goodbye>(&m)) {
      return fail("peer closed: " + bye->reason);
    } else if (handlers_.on_message) {
      try {
        handlers_.on_message(std::move(m));
      } catch (const std::exception& e) {
        return fail(std::string("on_message handler threw: ") + e.what());
      }
    }
    if (final) return fail("peer ended its stream");
    read_next();
  }

  void arm_keepalive() {
    if (opts_.keepalive_interval.count() <= 0 || closed_) return;
    keepalive_timer_.expires_after(opts_.keepalive_interval);
    keepalive_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->closed_ || self->closing_) return;
      self->enqueue(Ping{++self->ping_nonce_, now_ns(), {}}, false, false);
      self->arm_keepalive();
    });
  }

  // Ends the link once: drops queued frames, closes the socket, reports the reason.
  void fail(const std::string& reason) {
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard lk(send_mu_);
      send_closed_ = true;
      queue_.clear();
      release_.clear();
      queued_bytes_ = 0;
      queued_bytes_atomic_ = 0;
    }
    read_timer_.cancel();
    write_timer_.cancel();
    keepalive_timer_.cancel();
    close_timer_.cancel();
    shape_timer_.cancel();
    std::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    close_reason_ = reason;
    log_line(opts_, "link " + peer_addr_ + " (" + format_public_key(peer_).substr(0, 8) + "...) closed: " + reason);
    if (!started_) return;
    auto cb = std::move(handlers_.on_close);
    handlers_ = {};  // drop captures (they may hold this link)
    if (cb) cb(reason);
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer read_timer_, write_timer_, keepalive_timer_, close_timer_, shape_timer_;
  std::unique_ptr<SecureChannel> channel_;
  LinkOptions opts_;
  PublicKey peer_;
  std::string peer_addr_;
  size_t max_queue_ = 0;

  // Send queue, shared between producers and the io thread.
  std::mutex send_mu_;
  std::deque<std::vector<std::byte>> queue_;
  size_t queued_bytes_ = 0;
  bool write_posted_ = false;
  bool send_closed_ = false;
  std::optional<Shaper> shaper_;  // benchmark shaping of what this end sends
  std::deque<double> release_;    // [queue_.size()] when each queued frame may be written (shaped)

  // io thread only.
  LinkHandlers handlers_;
  std::vector<std::vector<std::byte>> writing_;
  std::array<std::byte, kFrameHeaderBytes> prefix_{};
  std::vector<std::byte> body_, plain_;
  uint64_t read_gen_ = 0, write_gen_ = 0, ping_nonce_ = 0;
  bool started_ = false, reading_ = false, paused_ = false;
  std::string close_reason_, local_reason_;

  std::atomic<bool> closed_{false}, closing_{false};
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0}, messages_sent_{0}, messages_received_{0};
  std::atomic<uint64_t> queued_bytes_atomic_{0}, sends_refused_{0};
  std::atomic<double> rtt_us_{0}, rtt_us_smoothed_{0};
  std::atomic<double> bandwidth_{0};
  std::atomic<size_t> probe_bytes_{0};
  static constexpr uint64_t kProbeBit = uint64_t{1} << 63;  // in a Ping nonce: a bandwidth probe
};

}  // namespace

std::string_view send_result_name(SendResult r) {
  switch (r) {
    case SendResult::ok: return "ok";
    case SendResult::queue_full: return "queue_full";
    case SendResult::too_large: return "too_large";
    case SendResult::closed: return "closed";
  }
  return "unknown";
}

void log_line(const LinkOptions& opts, std::string_view line) {
  if (opts.log) {
    opts.log(line);
  } else {
    std::cerr << "zen transport: " << line << "\n";
  }
}

std::shared_ptr<Link> make_asio_link(asio::ip::tcp::socket socket, std::unique_ptr<SecureChannel> channel,
                                     const PublicKey& peer, const LinkOptions& opts) {
  return std::make_shared<AsioLink>(std::move(socket), std::move(channel), peer, opts);
}

IoThread::IoThread()
    : work_(asio::make_work_guard(io_)), thread_([this] {
        // A handler that throws must not take every link on this thread down with it.
        for (;;) {
          try {
            io_.run();
            return;
          } catch (const std::exception& e) {
            std::cerr << "zen transport: io thread handler threw: " << e.what() << "\n";
          }
        }
      }) {}

IoThread::~IoThread() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace zen::transport
