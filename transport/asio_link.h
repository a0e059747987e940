// The real Link: TCP via Asio, authenticated by the handshake (handshake.h),
// encrypted per direction by SecureChannel (channel.h).
//
// Threading: one thread runs the io_context (IoThread) and owns every socket,
// timer and receive buffer. send()/close() may be called from any thread: send
// encodes and encrypts on the caller's thread, then hands the frame over with
// asio::post. on_message/on_close run on the io thread and must not block.
//
// Backpressure: each link has a bounded send queue (bytes accepted but not yet
// written, in-flight write included). When it is full send() returns
// SendResult::queue_full at once and queues nothing; the producer retries later
// (LinkStats::queued_bytes tells how much is pending). One write is outstanding
// per connection at a time; it gathers the queued frames.
#pragma once

#include <asio.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "transport/channel.h"
#include "transport/keys.h"
#include "transport/link.h"

namespace zen::transport {

struct Credentials {
  KeyPair identity;
  ClusterSecret cluster_secret;
  std::vector<PublicKey> allow_list;  // empty: any peer that holds the cluster secret
};

struct LinkOptions {
  size_t max_frame_bytes = kDefaultMaxFrameBytes;       // largest encoded message either way
  size_t max_send_queue_bytes = size_t{256} << 20;      // raised to fit at least one full frame
  std::chrono::milliseconds handshake_timeout{5000};    // whole handshake
  std::chrono::milliseconds read_timeout{20000};        // each read (frame prefix, frame body) and each write
  std::chrono::milliseconds keepalive_interval{5000};   // ping period; 0 disables
  size_t max_pending_handshakes = 64;                   // listener: more concurrent ones are refused
  // Benchmark/test only: authenticate but send frames unencrypted. Not reachable
  // from any config file; both sides must set it or the handshake refuses.
  bool insecure_plaintext_for_benchmark = false;
  // Benchmark only: the first entry naming this link's peer (or naming none) shapes what this
  // end sends. Empty: frames go out at once.
  std::vector<PeerShape> bench_shapes;
  // Where reasons for closes and refusals go; default: one line on stderr.
  std::function<void(std::string_view)> log;
};

// Owns an io_context and the one thread that runs it.
class IoThread {
 public:
  IoThread();
  ~IoThread();  // stops the context and joins
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;
  asio::io_context& context() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

// Accepts connections, runs the responder side of the handshake under its
// deadline and hands each authenticated peer to on_link. Refusals go to
// on_reject and the log; the listener keeps accepting.
class Listener {
 public:
  using OnLink = std::function<void(std::shared_ptr<Link>)>;
  using OnReject = std::function<void(const std::string& peer_address, const std::string& reason)>;
  Listener(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint, Credentials creds, LinkOptions opts,
           OnLink on_link, OnReject on_reject = {});
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  uint16_t port() const;
  void close();  // any thread

  struct State;

 private:
  std::shared_ptr<State> state_;
  uint16_t port_ = 0;
};

// Dials host:port and runs the initiator handshake. `done` runs once on the io
// thread with a link (error empty) or a reason. expected_peer pins the responder's key.
using OnConnect = std::function<void(std::shared_ptr<Link> link, const std::string& error)>;
void connect(asio::io_context& io, const std::string& host, uint16_t port, Credentials creds, LinkOptions opts,
             OnConnect done, std::optional<PublicKey> expected_peer = std::nullopt);
// Blocking form for callers off the io thread; throws std::runtime_error with the reason.
std::shared_ptr<Link> connect_blocking(asio::io_context& io, const std::string& host, uint16_t port,
                                       Credentials creds, LinkOptions opts,
                                       std::optional<PublicKey> expected_peer = std::nullopt);

// Internal: wraps an authenticated socket (used by the handshake code).
std::shared_ptr<Link> make_asio_link(asio::ip::tcp::socket socket, std::unique_ptr<SecureChannel> channel,
                                     const PublicKey& peer, const LinkOptions& opts);
// The default log sink if opts.log is empty.
void log_line(const LinkOptions& opts, std::string_view line);

}  // namespace zen::transport
