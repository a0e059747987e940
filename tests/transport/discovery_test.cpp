// Discovery beacons: encode/verify round trip; another secret, any altered byte, a wrong
// length, garbage, a stale timestamp and a replayed nonce are all rejected; and two
// DiscoveryService instances on 127.0.0.1 find each other (unicast targets only: these
// tests never send to any other network).
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <cstring>
#include <random>
#include <thread>

#include "transport/asio_link.h"
#include "transport/discovery.h"

namespace zen::transport {
namespace {

using namespace std::chrono_literals;

struct BeaconTest : ::testing::Test {
  ClusterSecret secret = generate_cluster_secret();
  SecretKey key = derive_discovery_key(secret);
  KeyPair id = generate_keypair();
  Beacon beacon = make_beacon("node-a", BeaconRole::worker, 7700, id.public_key);
};

TEST_F(BeaconTest, RoundTrip) {
  const std::vector<uint8_t> bytes = encode_beacon(beacon, key);
  EXPECT_EQ(bytes.size(), kBeaconHeaderBytes + 6 + kBeaconMacBytes);
  const BeaconCheck c = verify_beacon(bytes, key);
  ASSERT_EQ(c.status, BeaconStatus::ok);
  EXPECT_EQ(c.beacon.name, "node-a");
  EXPECT_EQ(c.beacon.role, BeaconRole::worker);
  EXPECT_EQ(c.beacon.tcp_port, 7700);
  EXPECT_EQ(c.beacon.public_key, id.public_key);
  EXPECT_EQ(c.beacon.timestamp_ms, beacon.timestamp_ms);
  EXPECT_EQ(c.beacon.nonce, beacon.nonce);
  EXPECT_EQ(c.beacon.version, kProtocolVersion);
  // Two beacons of one node differ in their nonce.
  const Beacon again = make_beacon("node-a", BeaconRole::worker, 7700, id.public_key);
  EXPECT_NE(again.nonce, beacon.nonce);
}

TEST_F(BeaconTest, LongestNameFits) {
  beacon.name = std::string(kBeaconMaxName, 'x');
  beacon.role = BeaconRole::coordinator;
  const std::vector<uint8_t> bytes = encode_beacon(beacon, key);
  EXPECT_EQ(bytes.size(), kBeaconMaxBytes);
  const BeaconCheck c = verify_beacon(bytes, key);
  ASSERT_EQ(c.status, BeaconStatus::ok);
  EXPECT_EQ(c.beacon.name, beacon.name);
  EXPECT_EQ(c.beacon.role, BeaconRole::coordinator);
}

TEST_F(BeaconTest, KeyIsDerivedNotTheSecretItself) {
  EXPECT_NE(key.bytes, secret.key.bytes);
  EXPECT_EQ(derive_discovery_key(secret).bytes, key.bytes);
  EXPECT_NE(derive_discovery_key(generate_cluster_secret()).bytes, key.bytes);
}

TEST_F(BeaconTest, AnotherClusterSecretIsRejected) {
  const std::vector<uint8_t> bytes = encode_beacon(beacon, key);
  const SecretKey other = derive_discovery_key(generate_cluster_secret());
  EXPECT_EQ(verify_beacon(bytes, other).status, BeaconStatus::bad_mac);
}

TEST_F(BeaconTest, EveryAlteredByteIsRejected) {
  const std::vector<uint8_t> bytes = encode_beacon(beacon, key);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}}) {
      std::vector<uint8_t> t = bytes;
      t[i] ^= flip;
      const BeaconStatus s = verify_beacon(t, key).status;
      EXPECT_TRUE(s == BeaconStatus::bad_mac || s == BeaconStatus::malformed)
          << "byte " << i << " flip " << int(flip) << ": " << beacon_status_name(s);
    }
  }
}

TEST_F(BeaconTest, WrongLengthsAndGarbageAreRejected) {
  const std::vector<uint8_t> bytes = encode_beacon(beacon, key);
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::span<const uint8_t> cut(bytes.data(), n);
    EXPECT_EQ(verify_beacon(cut, key).status, BeaconStatus::malformed) << "truncated to " << n;
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_EQ(verify_beacon(longer, key).status, BeaconStatus::malformed);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> g(rng() % 300);
    for (uint8_t& b : g) b = static_cast<uint8_t>(rng());
    if (g.size() >= 4 && i % 2 == 0) std::memcpy(g.data(), "ZENB", 4);  // get past the magic check
    if (g.size() >= 8 && i % 4 == 0) g[7] = static_cast<uint8_t>(g.size() - kBeaconHeaderBytes - kBeaconMacBytes);
    EXPECT_NE(verify_beacon(g, key).status, BeaconStatus::ok);
  }
}

TEST_F(BeaconTest, OtherProtocolVersionIsAuthenticButRefused) {
  beacon.version = kProtocolVersion + 1;
  const BeaconCheck c = verify_beacon(encode_beacon(beacon, key), key);
  EXPECT_EQ(c.status, BeaconStatus::unsupported_version);
  EXPECT_EQ(c.beacon.name, "node-a");  // so the log can say who
}

TEST_F(BeaconTest, EncodeRefusesBadFields) {
  for (const std::string& name : {std::string(), std::string(kBeaconMaxName + 1, 'x'), std::string("a\nb"),
                                  std::string("tab\there"), std::string("del\x7f")}) {
    Beacon b = beacon;
    b.name = name;
    EXPECT_THROW(encode_beacon(b, key), std::invalid_argument) << name;
  }
  Beacon b = beacon;
  b.tcp_port = 0;
  EXPECT_THROW(encode_beacon(b, key), std::invalid_argument);
  b = beacon;
  b.role = static_cast<BeaconRole>(3);
  EXPECT_THROW(encode_beacon(b, key), std::invalid_argument);
  b = beacon;
  b.name = "n\xc3\xa9ud";  // UTF-8 is fine
  EXPECT_EQ(verify_beacon(encode_beacon(b, key), key).status, BeaconStatus::ok);
}

TEST_F(BeaconTest, StaleTimestampsAreRejected) {
  ReplayGuard guard(30s);
  const uint64_t now = beacon.timestamp_ms;
  Beacon b = beacon;
  b.timestamp_ms = now - 31000;
  EXPECT_EQ(guard.check(b, now), BeaconStatus::stale);
  b.timestamp_ms = now + 31000;  // from the future (clock skew beyond the window)
  EXPECT_EQ(guard.check(b, now), BeaconStatus::stale);
  b.timestamp_ms = now - 29000;
  EXPECT_EQ(guard.check(b, now), BeaconStatus::ok);
  b.nonce[0] ^= 1;
  b.timestamp_ms = now + 29000;
  EXPECT_EQ(guard.check(b, now), BeaconStatus::ok);
}

TEST_F(BeaconTest, ReplaysAreRejected) {
  ReplayGuard guard(30s);
  const uint64_t now = beacon.timestamp_ms;
  const BeaconCheck first = verify_beacon(encode_beacon(beacon, key), key);
  ASSERT_EQ(first.status, BeaconStatus::ok);
  EXPECT_EQ(guard.check(first.beacon, now), BeaconStatus::ok);
  EXPECT_EQ(guard.check(first.beacon, now + 1000), BeaconStatus::replayed);
  EXPECT_EQ(guard.check(first.beacon, now + 29000), BeaconStatus::replayed);
  // Once the window has passed the beacon is stale instead, and its nonce is forgotten.
  EXPECT_EQ(guard.check(first.beacon, now + 31000), BeaconStatus::stale);
  EXPECT_EQ(guard.remembered(), 0u);
}

TEST_F(BeaconTest, ReplayMemoryIsBounded) {
  ReplayGuard guard(30s, 100);
  const uint64_t now = beacon.timestamp_ms;
  for (int i = 0; i < 1000; ++i) {
    Beacon b = make_beacon("n", BeaconRole::worker, 1, id.public_key);
    b.timestamp_ms = now;
    EXPECT_EQ(guard.check(b, now), BeaconStatus::ok);
  }
  EXPECT_LE(guard.remembered(), 100u);
}

// Collects what a DiscoveryService reports.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<DiscoveredPeer> peers;
  std::vector<std::string> log;

  DiscoveryService::OnPeer on_peer() {
    return [this](const DiscoveredPeer& p) {
      std::lock_guard lk(mu);
      peers.push_back(p);
      cv.notify_all();
    };
  }
  std::function<void(std::string_view)> logger() {
    return [this](std::string_view l) {
      std::lock_guard lk(mu);
      log.emplace_back(l);
    };
  }
  bool wait_for_name(const std::string& name, std::chrono::milliseconds t = 5s) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, t, [&] {
      for (const auto& p : peers)
        if (p.name == name) return true;
      return false;
    });
  }
  size_t count(const std::string& name) {
    std::lock_guard lk(mu);
    size_t n = 0;
    for (const auto& p : peers) n += p.name == name;
    return n;
  }
};

DiscoveryOptions loopback_options(Seen& seen) {
  DiscoveryOptions o;
  o.bind_address = "127.0.0.1";
  o.port = 0;
  o.targets = {};
  o.interval = 50ms;
  o.log = seen.logger();
  return o;
}

std::string local(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

TEST(Discovery, TwoNodesFindEachOtherOnLoopback) {
  const ClusterSecret secret = generate_cluster_secret();
  const KeyPair ka = generate_keypair(), kb = generate_keypair();
  IoThread io;
  Seen seen_a, seen_b;
  DiscoveryService a(io.context(), secret, {"coord", BeaconRole::coordinator, 7700, ka.public_key},
                     loopback_options(seen_a), seen_a.on_peer());
  DiscoveryOptions ob = loopback_options(seen_b);
  ob.targets = {local(a.port())};
  DiscoveryService b(io.context(), secret, {"worker-1", BeaconRole::worker, 7800, kb.public_key}, ob,
                     seen_b.on_peer());
  a.set_targets({local(b.port()), local(a.port())});  // to itself too: its own beacons are ignored

  ASSERT_TRUE(seen_a.wait_for_name("worker-1")) << "A never heard B";
  ASSERT_TRUE(seen_b.wait_for_name("coord")) << "B never heard A";
  {
    std::lock_guard lk(seen_a.mu);
    const DiscoveredPeer& p = seen_a.peers.front();
    EXPECT_EQ(p.role, BeaconRole::worker);
    EXPECT_EQ(p.host, "127.0.0.1");
    EXPECT_EQ(p.tcp_port, 7800);
    EXPECT_EQ(p.address(), "127.0.0.1:7800");
    EXPECT_EQ(p.public_key, kb.public_key);
    EXPECT_TRUE(p.first_seen);
  }
  {
    std::lock_guard lk(seen_b.mu);
    EXPECT_EQ(seen_b.peers.front().role, BeaconRole::coordinator);
    EXPECT_EQ(seen_b.peers.front().tcp_port, 7700);
    EXPECT_EQ(seen_b.peers.front().public_key, ka.public_key);
  }
  // Later beacons refresh the peer without being "first seen" again.
  std::this_thread::sleep_for(300ms);
  EXPECT_GE(seen_a.count("worker-1"), 2u);
  {
    std::lock_guard lk(seen_a.mu);
    for (size_t i = 1; i < seen_a.peers.size(); ++i) EXPECT_FALSE(seen_a.peers[i].first_seen);
  }
  EXPECT_EQ(seen_a.count("coord"), 0u) << "a node must ignore its own beacons";
  EXPECT_GT(a.stats().own, 0u);
  EXPECT_GT(a.stats().sent, 0u);

  a.stop();
  const size_t heard = seen_a.count("worker-1");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(seen_a.count("worker-1"), heard) << "on_peer after stop()";
}

TEST(Discovery, StrangersCannotInjectPeers) {
  const ClusterSecret secret = generate_cluster_secret();
  IoThread io;
  Seen seen, seen_stranger;
  DiscoveryService a(io.context(), secret, {"coord", BeaconRole::coordinator, 7700, generate_keypair().public_key},
                     loopback_options(seen), seen.on_peer());
  DiscoveryOptions os = loopback_options(seen_stranger);
  os.targets = {local(a.port())};
  DiscoveryService stranger(io.context(), generate_cluster_secret(),
                            {"intruder", BeaconRole::worker, 6666, generate_keypair().public_key}, os,
                            seen_stranger.on_peer());
  // Also a raw socket replaying a genuine beacon and sending garbage.
  const SecretKey key = derive_discovery_key(secret);
  const std::vector<uint8_t> genuine =
      encode_beacon(make_beacon("replayed", BeaconRole::worker, 7900, generate_keypair().public_key), key);
  asio::io_context raw_io;
  asio::ip::udp::socket raw(raw_io, asio::ip::udp::endpoint(asio::ip::udp::v4(), 0));
  const asio::ip::udp::endpoint to(asio::ip::make_address_v4("127.0.0.1"), a.port());
  raw.send_to(asio::buffer(genuine), to);
  raw.send_to(asio::buffer(genuine), to);
  const std::vector<uint8_t> junk(100, 0x5a);
  raw.send_to(asio::buffer(junk), to);

  ASSERT_TRUE(seen.wait_for_name("replayed", 3s));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline &&
         (a.stats().rejected[static_cast<size_t>(BeaconStatus::bad_mac)] < 3 ||
          a.stats().rejected[static_cast<size_t>(BeaconStatus::replayed)] < 1 ||
          a.stats().rejected[static_cast<size_t>(BeaconStatus::malformed)] < 1))
    std::this_thread::sleep_for(20ms);
  const DiscoveryStats st = a.stats();
  EXPECT_GE(st.rejected[static_cast<size_t>(BeaconStatus::bad_mac)], 3u);
  EXPECT_EQ(st.rejected[static_cast<size_t>(BeaconStatus::replayed)], 1u);
  EXPECT_EQ(st.rejected[static_cast<size_t>(BeaconStatus::malformed)], 1u);
  EXPECT_EQ(seen.count("intruder"), 0u);
  EXPECT_EQ(seen.count("replayed"), 1u);
  std::lock_guard lk(seen.mu);
  bool logged = false;
  for (const auto& l : seen.log) logged = logged || l.find("bad MAC") != std::string::npos;
  EXPECT_TRUE(logged) << "a refused beacon should be logged once";
  size_t mac_lines = 0;
  for (const auto& l : seen.log) mac_lines += l.find("bad MAC") != std::string::npos;
  EXPECT_EQ(mac_lines, 1u) << "refusals are rate-limited";
}

TEST(Discovery, BadTargetsAreErrors) {
  EXPECT_THROW(parse_discovery_target("lan.example", 7701), std::invalid_argument);
  EXPECT_THROW(parse_discovery_target("10.0.0.1:0", 7701), std::invalid_argument);
  EXPECT_THROW(parse_discovery_target("10.0.0.1:x", 7701), std::invalid_argument);
  EXPECT_EQ(parse_discovery_target("10.0.0.255", 7701).port(), 7701);
  EXPECT_EQ(parse_discovery_target("239.255.77.77:9000", 7701).port(), 9000);
  EXPECT_TRUE(parse_discovery_target("239.255.77.77", 7701).address().is_multicast());
}

}  // namespace
}  // namespace zen::transport
