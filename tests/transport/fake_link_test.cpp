#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "transport/asio_link.h"
#include "transport/fake_link.h"

namespace zen::transport {
namespace {
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Collects what one end receives.
struct Sink {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<Message, Clock::time_point>> got;
  std::vector<std::string> closes;

  LinkHandlers handlers() {
    return {[this](Message&& m) {
              std::lock_guard lk(mu);
              got.emplace_back(std::move(m), Clock::now());
              cv.notify_all();
            },
            [this](const std::string& r) {
              std::lock_guard lk(mu);
              closes.push_back(r);
              cv.notify_all();
            }};
  }
  bool wait_count(size_t n, std::chrono::milliseconds t = 3000ms) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, t, [&] { return got.size() >= n; });
  }
  bool wait_closed(std::chrono::milliseconds t = 3000ms) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, t, [&] { return !closes.empty(); });
  }
  size_t count() {
    std::lock_guard lk(mu);
    return got.size();
  }
};

TEST(FakeLink, DeliversInOrderAfterLatency) {
  IoThread io;
  FakeLinkConditions c;
  c.latency = 30ms;
  auto [a, b] = make_fake_link_pair(io.context(), c, {});
  Sink sa, sb;
  a->start(sa.handlers());
  b->start(sb.handlers());
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < 50; ++i) ASSERT_EQ(a->send(Heartbeat{i, 0}), SendResult::ok);
  ASSERT_TRUE(sb.wait_count(50));
  for (uint64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(std::get<Heartbeat>(sb.got[i].first).sent_ns, i);
    EXPECT_GE(sb.got[i].second - t0, 30ms);
  }
  EXPECT_EQ(b->stats().messages_received, 50u);
  EXPECT_EQ(a->stats().messages_sent, 50u);
  EXPECT_DOUBLE_EQ(a->stats().rtt_us, 30000.0);
  // The other direction has no latency.
  b->send(Ping{1, 1, {}});
  ASSERT_TRUE(sa.wait_count(1));
}

TEST(FakeLink, BandwidthPacesLargeMessages) {
  IoThread io;
  FakeLinkConditions c;
  c.bandwidth_bytes_per_s = 10e6;  // 10 MB/s: 10 x 100 KB takes ~100 ms
  auto [a, b] = make_fake_link_pair(io.context(), c, {});
  Sink sb;
  b->start(sb.handlers());
  a->start({});
  auto t0 = Clock::now();
  for (int i = 0; i < 10; ++i) a->send(WeightChunk{{1}, 0, 1 << 20, std::vector<std::byte>(100000)});
  ASSERT_TRUE(sb.wait_count(10));
  EXPECT_GE(sb.got.back().second - t0, 95ms);
  // Paced, not held back as a whole: the first arrives well before the last (a difference, so
  // a machine too busy to run the io thread on time does not fail it).
  EXPECT_LT(sb.got.front().second - t0, sb.got.back().second - t0 - 40ms);
}

TEST(FakeLink, DropsLoseSomeMessages) {
  IoThread io;
  FakeLinkConditions c;
  c.drop_rate = 0.5;
  c.seed = 42;
  auto [a, b] = make_fake_link_pair(io.context(), c, {});
  Sink sb;
  b->start(sb.handlers());
  a->start({});
  for (uint64_t i = 0; i < 400; ++i) a->send(Heartbeat{i, 0});
  a->send(Goodbye{"marker"});  // may be dropped too; wait on time instead
  std::this_thread::sleep_for(100ms);
  size_t n = sb.count();
  EXPECT_GT(n, 100u);
  EXPECT_LT(n, 300u);
  // What arrives is still in order.
  std::lock_guard lk(sb.mu);
  for (size_t i = 1; i < sb.got.size(); ++i) {
    auto* h0 = std::get_if<Heartbeat>(&sb.got[i - 1].first);
    auto* h1 = std::get_if<Heartbeat>(&sb.got[i].first);
    if (h0 && h1) {
      EXPECT_LT(h0->sent_ns, h1->sent_ns);
    }
  }
}

TEST(FakeLink, StallHoldsThenReleases) {
  IoThread io;
  FakeLinkConditions c;
  c.max_queue_bytes = 4096;
  auto [a, b] = make_fake_link_pair(io.context(), c, {});
  Sink sb;
  b->start(sb.handlers());
  a->start({});
  a->stall(true);
  size_t ok = 0;
  SendResult r = SendResult::ok;
  for (int i = 0; i < 1000 && r == SendResult::ok; ++i) {
    r = a->send(Heartbeat{static_cast<uint64_t>(i), 0});
    if (r == SendResult::ok) ++ok;
  }
  EXPECT_EQ(r, SendResult::queue_full);  // bounded even while stalled
  EXPECT_LE(a->stats().queued_bytes, 4096u);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(sb.count(), 0u);
  a->stall(false);
  ASSERT_TRUE(sb.wait_count(ok));
  EXPECT_EQ(sb.count(), ok);
}

TEST(FakeLink, LongStallHitsTheReadDeadline) {
  IoThread io;
  FakeLinkConditions c;
  c.stall_timeout = 60ms;
  auto [a, b] = make_fake_link_pair(io.context(), c, {});
  Sink sa, sb;
  a->start(sa.handlers());
  b->start(sb.handlers());
  a->stall(true);
  a->stall(false);  // a short stall is harmless
  a->stall(true);
  auto t0 = Clock::now();
  ASSERT_TRUE(sb.wait_closed());
  EXPECT_GE(Clock::now() - t0, 55ms);
  EXPECT_NE(sb.closes[0].find("read deadline"), std::string::npos) << sb.closes[0];
  ASSERT_TRUE(sa.wait_closed());
}

TEST(FakeLink, PauseReceiveHoldsInbound) {
  IoThread io;
  auto [a, b] = make_fake_link_pair(io.context());
  Sink sb;
  b->start(sb.handlers());
  a->start({});
  b->pause_receive(true);
  a->send(Ping{1, 1, {}});
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(sb.count(), 0u);
  b->pause_receive(false);
  EXPECT_TRUE(sb.wait_count(1));
}

TEST(FakeLink, DisconnectClosesBothEnds) {
  IoThread io;
  FakeLinkConditions c;
  c.latency = 50ms;
  auto [a, b] = make_fake_link_pair(io.context(), c, c);
  Sink sa, sb;
  a->start(sa.handlers());
  b->start(sb.handlers());
  a->send(Ping{1, 1, {}});  // in flight when the cable is cut: lost
  a->disconnect("cable cut");
  ASSERT_TRUE(sa.wait_closed());
  ASSERT_TRUE(sb.wait_closed());
  EXPECT_EQ(sa.closes[0], "cable cut");
  EXPECT_EQ(sb.closes[0], "cable cut");
  std::this_thread::sleep_for(80ms);
  EXPECT_EQ(sb.count(), 0u);
  EXPECT_EQ(a->send(Ping{}), SendResult::closed);
  EXPECT_FALSE(b->is_open());
}

TEST(FakeLink, OrderlyCloseDeliversInFlightFirst) {
  IoThread io;
  FakeLinkConditions c;
  c.latency = 20ms;
  auto [a, b] = make_fake_link_pair(io.context(), c, c);
  Sink sa, sb;
  a->start(sa.handlers());
  b->start(sb.handlers());
  a->send(Heartbeat{7, 0});
  a->close("done");
  ASSERT_TRUE(sb.wait_closed());
  EXPECT_EQ(sb.count(), 1u);
  EXPECT_EQ(sb.closes[0], "peer closed: done");
  ASSERT_TRUE(sa.wait_closed());
  EXPECT_EQ(sa.closes[0], "closed locally: done");
}

TEST(FakeLink, ThrowingHandlerClosesTheLink) {
  IoThread io;
  auto [a, b] = make_fake_link_pair(io.context());
  Sink sb;
  LinkHandlers h = sb.handlers();
  h.on_message = [](Message&&) { throw std::runtime_error("boom"); };
  b->start(h);
  a->start({});
  a->send(Ping{1, 1, {}});
  ASSERT_TRUE(sb.wait_closed());
  EXPECT_EQ(sb.closes[0], "on_message handler threw: boom");
}

TEST(FakeLink, CloseBeforeStartIsStillReported) {
  IoThread io;
  auto [a, b] = make_fake_link_pair(io.context());
  a->disconnect("early");
  Sink sa;
  a->start(sa.handlers());
  ASSERT_TRUE(sa.wait_closed());
  EXPECT_EQ(sa.closes[0], "early");
}

}  // namespace
}  // namespace zen::transport
