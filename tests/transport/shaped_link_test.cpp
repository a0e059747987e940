// The benchmark shaper of AsioLink (LinkOptions::bench_shapes): a shaped client's messages
// arrive after the configured latency and no faster than the configured rate, in order; an
// unshaped link is not slowed; a shape naming another peer does not apply.
#include <chrono>
#include <future>

#include "tests/transport/loopback_util.h"

namespace zen::transport::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Sends `n` heartbeats (a tiny payload) or Forwards of `bytes` each from a client with `opts` to
// the echo server, and returns the time until the server has them all; checks their order.
double send_and_time(Server& srv, LinkOptions opts, int n, size_t hidden_floats) {
  IoThread io;
  Credentials c{generate_keypair(), srv.creds.cluster_secret, {}};
  auto link = connect_blocking(io.context(), "127.0.0.1", srv.port(), c, opts);
  link->start({[](Message&&) {}, [](const std::string&) {}});
  const size_t before = [&] {
    std::lock_guard lk(srv.ev->mu);
    return srv.ev->messages.size();
  }();
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    Forward f;
    f.request_id = static_cast<uint64_t>(i);
    f.seq_ids = {1};
    f.positions = {i};
    std::vector<float> h(hidden_floats, 0.5f);
    f.hidden = encode_activations(h, {1, static_cast<uint32_t>(hidden_floats)}, DType::f32);
    EXPECT_EQ(link->send(f), SendResult::ok);
  }
  EXPECT_TRUE(srv.ev->wait([&](Events& e) { return e.messages.size() >= before + static_cast<size_t>(n); }, 10000ms));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::lock_guard lk(srv.ev->mu);
  for (int i = 0; i < n; ++i) {
    const auto* f = std::get_if<Forward>(&srv.ev->messages[before + static_cast<size_t>(i)]);
    EXPECT_TRUE(f && f->request_id == static_cast<uint64_t>(i)) << "message " << i << " out of order";
  }
  link->close("done");
  return s;
}

TEST(ShapedLink, LatencyDelaysEveryMessage) {
  Server srv(generate_cluster_secret());
  LinkOptions plain = fast_options();
  const double unshaped = send_and_time(srv, plain, 1, 16);
  LinkOptions o = fast_options();
  o.bench_shapes.push_back({std::nullopt, LinkShape{0.080, 0, 0, 1}});
  const double shaped = send_and_time(srv, o, 1, 16);
  EXPECT_GE(shaped, 0.080);
  EXPECT_LT(shaped, 0.080 + 0.2);
  EXPECT_LT(unshaped, shaped - 0.05) << "the delay comes from the shape, not from this machine";
}

TEST(ShapedLink, BandwidthPacesBackToBackMessages) {
  Server srv(generate_cluster_secret());
  LinkOptions o = fast_options();
  // 20 messages of ~40 KB at 4 MB/s: about 0.2 s on the wire, latency 5 ms on top.
  o.bench_shapes.push_back({std::nullopt, LinkShape{0.005, 4e6, 0, 1}});
  const double s = send_and_time(srv, o, 20, 10000);
  const double wire = 20 * 40000.0 / 4e6;
  EXPECT_GE(s, wire * 0.95 + 0.005);
  EXPECT_LT(s, wire * 1.5 + 0.1);
}

TEST(ShapedLink, LossAddsRecoveryDelay) {
  Server srv(generate_cluster_secret());
  LinkOptions o = fast_options();
  // Each 40 KB message has 28 packets: with loss 0.5 practically every message is late by
  // max(4 x 2 ms, 10 ms) + 4 ms = 14 ms, and frames stay in order behind a late one.
  o.bench_shapes.push_back({std::nullopt, LinkShape{0.002, 0, 0.5, 7}});
  const double s = send_and_time(srv, o, 5, 10000);
  EXPECT_GE(s, 0.002 + 0.014);
}

TEST(ShapedLink, ShapeForAnotherPeerDoesNotApply) {
  Server srv(generate_cluster_secret());
  LinkOptions o = fast_options();
  o.bench_shapes.push_back({generate_keypair().public_key, LinkShape{0.3, 0, 0, 1}});
  EXPECT_LT(send_and_time(srv, o, 3, 16), 0.2);
  LinkOptions mine = fast_options();
  mine.bench_shapes.push_back({srv.creds.identity.public_key, LinkShape{0.1, 0, 0, 1}});
  EXPECT_GE(send_and_time(srv, mine, 3, 16), 0.1);
}

}  // namespace
}  // namespace zen::transport::testing

namespace zen::transport::testing {
namespace {

// probe_bandwidth() measures what a shaped link lets through, and far more on a plain one.
double probe(Server& srv, LinkOptions opts, size_t bytes) {
  IoThread io;
  Credentials c{generate_keypair(), srv.creds.cluster_secret, {}};
  auto link = connect_blocking(io.context(), "127.0.0.1", srv.port(), c, opts);
  link->start({[](Message&&) {}, [](const std::string&) {}});
  EXPECT_EQ(link->stats().bandwidth_bytes_s, 0.0) << "nothing measured yet";
  link->probe_bandwidth(bytes);
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (link->stats().bandwidth_bytes_s == 0 && Clock::now() < end) std::this_thread::sleep_for(5ms);
  const double bw = link->stats().bandwidth_bytes_s;
  link->close("done");
  return bw;
}

TEST(ShapedLink, BandwidthProbeMeasuresTheShapedRate) {
  Server srv(generate_cluster_secret());
  LinkOptions o = fast_options();
  // 1 MB/s: slow enough that an unshaped loopback link beats it five times over on any machine,
  // also under ThreadSanitizer (where an encrypted loopback link moved 19.9 MB/s). 128 KiB take
  // 0.13 s at that rate, inside the test links' 300 ms read timeout.
  constexpr double kShaped = 1e6;
  constexpr size_t kBytes = size_t{128} << 10;
  o.bench_shapes.push_back({std::nullopt, LinkShape{0.005, kShaped, 0, 1}});
  const double shaped = probe(srv, o, kBytes);
  EXPECT_NEAR(shaped, kShaped, 0.25 * kShaped);
  const double plain = probe(srv, fast_options(), kBytes);
  EXPECT_GT(plain, 5 * kShaped);
}

}  // namespace
}  // namespace zen::transport::testing
