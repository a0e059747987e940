// The real transport on 127.0.0.1: a good round trip, then one misbehaving peer
// per failure class. Each must end with a clear logged reason, and the listener
// must still serve a good peer afterwards.
#include <future>
#include <random>

#include "tests/transport/loopback_util.h"

namespace zen::transport::testing {
namespace {

// Connects a well-behaved client and checks one echo round trip.
void expect_good_peer_works(Server& srv, KeyPair id = generate_keypair()) {
  IoThread io;
  Credentials c{std::move(id), srv.creds.cluster_secret, {}};
  std::shared_ptr<Link> link;
  ASSERT_NO_THROW(link = connect_blocking(io.context(), "127.0.0.1", srv.port(), c, fast_options(),
                                          srv.creds.identity.public_key));
  auto got = std::make_shared<std::promise<Message>>();
  auto once = std::make_shared<std::once_flag>();
  link->start({[got, once](Message&& m) { std::call_once(*once, [&] { got->set_value(std::move(m)); }); },
               [](const std::string&) {}});
  ASSERT_EQ(link->send(Heartbeat{42, 0.25f}), SendResult::ok);
  auto fut = got->get_future();
  ASSERT_EQ(fut.wait_for(3s), std::future_status::ready) << "good peer got no echo";
  EXPECT_TRUE(fut.get() == Message(Heartbeat{42, 0.25f}));
  link->close("done");
}

TEST(Loopback, HandshakeAndRoundTrip) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);
  IoThread io;
  Credentials c{generate_keypair(), s, {}};
  auto link = connect_blocking(io.context(), "127.0.0.1", srv.port(), c, fast_options());
  EXPECT_EQ(link->peer_key(), srv.creds.identity.public_key);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Message> got;
  std::string closed;
  link->start({[&](Message&& m) {
                 std::lock_guard lk(mu);
                 got.push_back(std::move(m));
                 cv.notify_all();
               },
               [&](const std::string& r) {
                 std::lock_guard lk(mu);
                 closed = r;
                 cv.notify_all();
               }});
  std::vector<float> hidden(4 * 2048);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = static_cast<float>(i) / 7.0f;
  Forward fwd{9, {1, 1, 1, 2}, {5, 6, 7, 0}, {}, encode_activations(hidden, {4, 2048}, DType::f32), true, true, {}};
  std::vector<Message> sent = {Hello{"client", c.identity.public_key, 1 << 30, 4, "avx2", 12.5, {}, ""}, fwd,
                               SampledTokens{9, {1, 2}, {17, 18}, false, {}}, ClearSequence{9, {1, 2}}};
  for (auto& m : sent) ASSERT_EQ(link->send(m), SendResult::ok);
  {
    std::unique_lock lk(mu);
    ASSERT_TRUE(cv.wait_for(lk, 3s, [&] { return got.size() == sent.size(); }));
    for (size_t i = 0; i < sent.size(); ++i) EXPECT_TRUE(got[i] == sent[i]) << message_name(sent[i]);
  }
  // Keepalive pings run both ways, give an RTT and keep an idle link inside
  // the 300 ms read deadline.
  std::this_thread::sleep_for(700ms);
  {
    std::lock_guard lk(srv.ev->mu);
    EXPECT_TRUE(srv.ev->closes.empty());
  }
  LinkStats st = link->stats();
  EXPECT_GT(st.rtt_us, 0);
  EXPECT_GE(st.messages_sent, sent.size());
  EXPECT_GT(st.bytes_sent, hidden.size() * 4);
  EXPECT_GT(st.bytes_received, hidden.size() * 4);
  EXPECT_TRUE(link->is_open());

  link->close("bye");
  EXPECT_EQ(srv.wait_close(), "peer closed: bye");
  std::unique_lock lk(mu);
  ASSERT_TRUE(cv.wait_for(lk, 3s, [&] { return !closed.empty(); }));
  EXPECT_EQ(closed, "closed locally: bye");
  EXPECT_EQ(link->send(Ping{}), SendResult::closed);
}

TEST(Loopback, ThrowingHandlerClosesOnlyThatLink) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);
  IoThread io;
  auto link = connect_blocking(io.context(), "127.0.0.1", srv.port(), {generate_keypair(), s, {}}, fast_options());
  auto closed = std::make_shared<std::promise<std::string>>();
  link->start({[](Message&&) { throw std::runtime_error("boom"); },
               [closed](const std::string& r) { closed->set_value(r); }});
  link->send(Heartbeat{1, 0});  // echoed back into the throwing handler
  auto fut = closed->get_future();
  ASSERT_EQ(fut.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(fut.get(), "on_message handler threw: boom");
  expect_good_peer_works(srv);
}

TEST(Loopback, WrongClusterSecret) {
  Server srv(generate_cluster_secret());
  IoThread io;
  Credentials c{generate_keypair(), generate_cluster_secret(), {}};
  try {
    connect_blocking(io.context(), "127.0.0.1", srv.port(), c, fast_options());
    FAIL() << "connected with the wrong cluster secret";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("closed the connection during the handshake"), std::string::npos) << e.what();
  }
  EXPECT_NE(srv.wait_reject(0).find("does not hold this cluster's secret"), std::string::npos);
  EXPECT_TRUE(srv.ev->logged("does not hold this cluster's secret"));
  expect_good_peer_works(srv);
}

TEST(Loopback, UnknownPeerKeyWithAllowList) {
  KeyPair friendly = generate_keypair();
  ClusterSecret s = generate_cluster_secret();
  Server srv(s, fast_options(), {friendly.public_key});
  IoThread io;
  Credentials stranger{generate_keypair(), s, {}};
  EXPECT_THROW(connect_blocking(io.context(), "127.0.0.1", srv.port(), stranger, fast_options()), std::runtime_error);
  EXPECT_NE(srv.wait_reject(0).find("is not on the allow list"), std::string::npos);
  // A client pinning the wrong server key refuses too.
  try {
    connect_blocking(io.context(), "127.0.0.1", srv.port(), Credentials{friendly, s, {}}, fast_options(),
                     generate_keypair().public_key);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not the expected key"), std::string::npos) << e.what();
  }
  expect_good_peer_works(srv, friendly);
}

TEST(Loopback, ReplayedFrame) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);
  RawClient c(srv.port());
  c.handshake(client_config(s));
  auto f = c.frame(Heartbeat{1, 0});
  c.write_bytes(f);
  c.write_bytes(f);
  EXPECT_NE(srv.wait_close().find("failed authentication"), std::string::npos);
  EXPECT_TRUE(c.server_hung_up());
  EXPECT_TRUE(srv.ev->logged("failed authentication"));
  {
    std::lock_guard lk(srv.ev->mu);
    EXPECT_EQ(srv.ev->messages.size(), 1u);  // the original got through, the replay did not
  }
  expect_good_peer_works(srv);
}

TEST(Loopback, FlippedBit) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);
  RawClient c(srv.port());
  c.handshake(client_config(s));
  auto f = c.frame(Heartbeat{1, 0});
  f[f.size() / 2] ^= std::byte{0x10};
  c.write_bytes(f);
  EXPECT_NE(srv.wait_close().find("failed authentication"), std::string::npos);
  EXPECT_TRUE(c.server_hung_up());
  expect_good_peer_works(srv);
}

TEST(Loopback, TruncatedStream) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);
  {
    RawClient c(srv.port());
    c.handshake(client_config(s));
    auto f = c.frame(Forward{1, {1}, {0}, {}, encode_activations(std::vector<float>(64), {1, 64}, DType::f32), false, false, {}});
    c.write_bytes(std::span(f).first(f.size() / 2));
    c.sock.shutdown(asio::ip::tcp::socket::shutdown_send);
    EXPECT_NE(srv.wait_close().find("truncated frame"), std::string::npos);
  }
  {
    RawClient c(srv.port());  // ends cleanly between frames but without the final goodbye
    c.handshake(client_config(s));
    c.write_bytes(c.frame(Heartbeat{1, 0}));
    c.sock.shutdown(asio::ip::tcp::socket::shutdown_send);
    ASSERT_TRUE(srv.ev->wait([](Events& e) { return e.closes.size() >= 2; }));
    EXPECT_TRUE(srv.ev->logged("without a goodbye (stream truncated)"));
  }
  expect_good_peer_works(srv);
}

TEST(Loopback, OverCapLengthPrefix) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);  // cap 1 MiB
  RawClient c(srv.port());
  c.handshake(client_config(s));
  uint8_t prefix[4] = {0xff, 0xff, 0xff, 0x7f};  // 2 GiB: must be refused before any allocation
  c.write(prefix);
  EXPECT_NE(srv.wait_close().find("frame length 2147483647 exceeds the cap"), std::string::npos);
  EXPECT_TRUE(c.server_hung_up());
  expect_good_peer_works(srv);
}

TEST(Loopback, StalledPeer) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);  // 300 ms deadlines
  {
    RawClient c(srv.port());  // connects, never speaks
    EXPECT_NE(srv.wait_reject(0).find("handshake deadline of 300 ms exceeded"), std::string::npos);
    EXPECT_TRUE(c.server_hung_up());
  }
  {
    RawClient c(srv.port());  // half of message 1, then silence
    auto m1 = Handshake(Handshake::Role::initiator, client_config(s)).write_msg1();
    c.write(std::span(m1).first(20));
    EXPECT_NE(srv.wait_reject(1).find("deadline"), std::string::npos);
  }
  {
    RawClient c(srv.port());  // handshakes, then stops sending (no pongs, no frames)
    c.handshake(client_config(s));
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_NE(srv.wait_close().find("read deadline"), std::string::npos);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  }
  expect_good_peer_works(srv);
}

TEST(Loopback, TooManyPendingHandshakes) {
  ClusterSecret s = generate_cluster_secret();
  LinkOptions o = fast_options();
  o.max_pending_handshakes = 2;
  Server srv(s, o);
  RawClient a(srv.port()), b(srv.port());  // silent: they hold the two slots until the deadline
  std::this_thread::sleep_for(50ms);
  RawClient c(srv.port());
  EXPECT_EQ(srv.wait_reject(0), "too many handshakes in progress");
  EXPECT_TRUE(c.server_hung_up(1000ms));
  ASSERT_TRUE(srv.ev->wait([](Events& e) { return e.rejects.size() >= 3; }));  // a and b time out
  expect_good_peer_works(srv);
}

TEST(Loopback, RandomGarbage) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);
  std::mt19937_64 rng(3);
  std::vector<uint8_t> junk(4096);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  {
    RawClient c(srv.port());  // garbage instead of a handshake
    c.write(junk);
    EXPECT_NE(srv.wait_reject(0).find("not speaking the zen protocol"), std::string::npos);
  }
  {
    RawClient c(srv.port());  // right magic and version, garbage after
    auto hdr = make_handshake_header({kProtocolVersion, false, false});
    c.write(hdr);
    c.write(junk);
    EXPECT_NE(srv.wait_reject(1).find("cluster's secret"), std::string::npos);
  }
  {
    RawClient c(srv.port());  // garbage after a good handshake
    c.handshake(client_config(s));
    junk[0] = 100;  // a length under the cap, so the body is read and authenticated
    junk[1] = junk[2] = junk[3] = 0;
    c.write(junk);
    std::string why = srv.wait_close();
    EXPECT_TRUE(why.find("failed authentication") != std::string::npos || why.find("exceeds the cap") != std::string::npos)
        << why;
  }
  expect_good_peer_works(srv);
}

TEST(Loopback, OldProtocolVersion) {
  ClusterSecret s = generate_cluster_secret();
  Server srv(s);
  {
    RawClient c(srv.port());
    auto cfg = client_config(s);
    cfg.protocol_version = 0;
    Handshake hs(Handshake::Role::initiator, cfg);
    c.write(hs.write_msg1());
    auto reply = c.read(kHandshakeHeaderBytes);
    HandshakeHeader h = parse_handshake_header(reply);
    EXPECT_TRUE(h.reject);
    EXPECT_EQ(h.version, kProtocolVersion);
    EXPECT_NE(srv.wait_reject(0).find("peer speaks protocol version 0, this node speaks version 1"), std::string::npos);
    try {
      hs.read_msg2(reply);
      FAIL();
    } catch (const HandshakeError& e) {
      EXPECT_NE(std::string(e.what()).find("responder speaks protocol version 1"), std::string::npos);
    }
  }
  {
    // Current handshake, but a message whose envelope carries another version.
    RawClient c(srv.port());
    c.handshake(client_config(s));
    auto bytes = encode(Heartbeat{1, 0});
    bytes[16] = std::byte{0};  // protocolVersion, low byte (see codec_test)
    std::vector<std::byte> f;
    c.channel->seal(bytes, false, f);
    c.write_bytes(f);
    EXPECT_NE(srv.wait_close().find("message protocol version 0 is not supported"), std::string::npos);
  }
  expect_good_peer_works(srv);
}

TEST(Loopback, BackpressureBoundsTheSendQueue) {
  ClusterSecret s = generate_cluster_secret();
  LinkOptions o = fast_options();
  o.read_timeout = 3000ms;  // the paused side must not time out the sender's writes
  Server srv(s, o);
  IoThread io;
  LinkOptions co = o;
  co.max_frame_bytes = 64 << 10;
  co.max_send_queue_bytes = 256 << 10;
  auto link = connect_blocking(io.context(), "127.0.0.1", srv.port(), {generate_keypair(), s, {}}, co);
  link->start({[](Message&&) {}, [](const std::string&) {}});
  ASSERT_TRUE(srv.ev->wait([](Events& e) { return !e.links.empty(); }));
  std::shared_ptr<Link> server_side;
  {
    std::lock_guard lk(srv.ev->mu);
    server_side = srv.ev->links[0];
  }
  server_side->pause_receive(true);
  WeightChunk chunk{{1}, 0, 1 << 30, std::vector<std::byte>(60 << 10)};
  size_t ok = 0;
  bool full = false;
  for (int i = 0; i < 5000 && !full; ++i) {
    SendResult r = link->send(chunk);
    if (r == SendResult::ok) ++ok;
    else if (r == SendResult::queue_full) full = true;
    else FAIL() << send_result_name(r);
    EXPECT_LE(link->stats().queued_bytes, size_t{256 << 10});
    if (i % 16 == 15) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(full) << "send queue never filled";
  EXPECT_GT(link->stats().sends_refused, 0u);
  EXPECT_EQ(link->send(WeightChunk{{1}, 0, 1 << 30, std::vector<std::byte>(70 << 10)}), SendResult::too_large);
  server_side->pause_receive(false);
  EXPECT_TRUE(srv.ev->wait([ok](Events& e) { return e.messages.size() == ok; }, 5000ms));
  link->close("done");
}

}  // namespace
}  // namespace zen::transport::testing
