// The seam at the network boundary: node/ and sim/ talk to peers only through
// Link. AsioLink (asio_link.h) is the real one; FakeLink (fake_link.h) runs in
// process with injected latency, bandwidth, drops, stalls and disconnects.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "transport/messages.h"

namespace zen::transport {

enum class SendResult {
  ok,          // queued; will be written in order
  queue_full,  // backpressure: the bounded send queue has no room; retry later (nothing was queued)
  too_large,   // the encoded message exceeds the frame cap; it can never be sent
  closed,      // the link is closed or closing
};
std::string_view send_result_name(SendResult r);

struct LinkStats {
  uint64_t bytes_sent = 0;      // on the wire, framing and tags included
  uint64_t bytes_received = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t queued_bytes = 0;    // accepted by send() but not yet written
  uint64_t sends_refused = 0;   // queue_full results
  double rtt_us = 0;            // last keepalive round trip, 0 before the first
  double rtt_us_smoothed = 0;   // EWMA (1/8) of rtt_us
  double bandwidth_bytes_s = 0; // from the last probe_bandwidth(), 0 before one completes
};

struct LinkHandlers {
  // Called on the link's io thread, in order. Must not block: move the message
  // to a compute thread (e.g. asio::post to a pool) and return.
  std::function<void(Message&&)> on_message;
  // Called exactly once, on the io thread, with a human-readable reason.
  std::function<void(const std::string& reason)> on_close;
  // Both are dropped when the link closes. Capture the link itself as a
  // weak_ptr: a strong one is a cycle until the link closes.
};

// Benchmark only: makes what one end sends look like a slower network (the harness behind
// `zen sim --run` uses it where tc netem is not available). Frames leave one after another at
// `bandwidth_bytes_s` and are written `latency_s` later; each 1448-byte packet of a frame is lost
// with probability `loss`, which costs its bytes again and, once per frame, a tail-loss recovery
// (max(2 RTT, 10 ms) + 1 RTT), as partition::message_s models it.
struct LinkShape {
  double latency_s = 0;          // one way
  double bandwidth_bytes_s = 0;  // 0: unlimited
  double loss = 0;               // in [0, 1)
  uint64_t seed = 1;             // for the loss draws
};
struct PeerShape {
  std::optional<PublicKey> peer;  // nullopt: every peer
  LinkShape shape;
};

class Link {
 public:
  virtual ~Link() = default;
  // Installs handlers and starts reading. Call once.
  virtual void start(LinkHandlers handlers) = 0;
  // Any thread. Encodes (and encrypts) on the calling thread, queues for the io
  // thread. Throws std::invalid_argument for a message no peer could decode
  // (tensor bytes not matching its shape, row lists of different lengths).
  virtual SendResult send(const Message& m) = 0;
  // Any thread, idempotent: sends a Goodbye with the reason, then closes. on_close
  // receives "closed locally: <reason>".
  virtual void close(const std::string& reason) = 0;
  // Receive-side backpressure: while paused no frames are read (TCP pushes back on the peer).
  virtual void pause_receive(bool paused) = 0;
  virtual LinkStats stats() const = 0;
  virtual bool is_open() const = 0;
  // The peer's static key, proven in the handshake.
  virtual const PublicKey& peer_key() const = 0;
  virtual std::string peer_address() const = 0;
  // Sends a Ping carrying `bytes` of padding; when its Pong returns, stats().bandwidth_bytes_s
  // becomes bytes / (round trip - smoothed RTT). Links that cannot measure ignore it.
  virtual void probe_bandwidth(size_t bytes) { (void)bytes; }
};

}  // namespace zen::transport
