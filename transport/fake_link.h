// In-process Link pair for tests and the simulator. Messages keep their order
// and can be delayed (latency), paced (bandwidth), lost (drops), held (stalls)
// or cut (disconnect). Delivery runs on the given io_context, like AsioLink.
#pragma once

#include <asio.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "transport/link.h"

namespace zen::transport {

// Conditions for one direction (messages sent from one end).
struct FakeLinkConditions {
  std::chrono::microseconds latency{0};  // one way
  double bandwidth_bytes_per_s = 0;      // 0: unlimited
  double drop_rate = 0;                  // probability a message silently vanishes
  size_t max_queue_bytes = size_t{256} << 20;  // in flight before send() says queue_full
  bool serialize = true;                 // run every message through encode()/decode()
  uint64_t seed = 1;                     // for drops
  // Like AsioLink's read deadline: a stall longer than this closes both ends
  // with a "read deadline" reason. 0: a stall lasts until released.
  std::chrono::milliseconds stall_timeout{0};
};

class FakeWire;

class FakeLink final : public Link {
 public:
  FakeLink(std::shared_ptr<FakeWire> wire, int end);
  ~FakeLink() override;

  void start(LinkHandlers handlers) override;
  SendResult send(const Message& m) override;
  void close(const std::string& reason) override;  // orderly: in-flight messages, then a goodbye
  void pause_receive(bool paused) override;
  LinkStats stats() const override;
  bool is_open() const override;
  const PublicKey& peer_key() const override;
  std::string peer_address() const override;

  // Fault injection, any thread.
  void set_conditions(const FakeLinkConditions& c);  // for messages sent from this end
  void stall(bool stalled);  // hold (not lose) everything sent from this end; see stall_timeout
  void disconnect(const std::string& reason);        // cable cut: both ends close with `reason`, in-flight lost

 private:
  std::shared_ptr<FakeWire> wire_;
  int end_;
};

struct FakeLinkPair {
  std::shared_ptr<FakeLink> a, b;
};

FakeLinkPair make_fake_link_pair(asio::io_context& io, const FakeLinkConditions& a_to_b = {},
                                 const FakeLinkConditions& b_to_a = {}, const PublicKey& key_a = {},
                                 const PublicKey& key_b = {});

}  // namespace zen::transport
