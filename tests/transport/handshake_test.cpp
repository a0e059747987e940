// The handshake state machine and the secure channel, without sockets.
#include <gtest/gtest.h>

#include <cstring>

#include "transport/channel.h"
#include "transport/codec.h"

namespace zen::transport {
namespace {

struct Party {
  KeyPair id = generate_keypair();
};

HandshakeConfig config(const Party& p, const ClusterSecret& s) {
  HandshakeConfig c;
  c.identity = p.id;
  c.cluster_secret = s;
  return c;
}

// Runs the three messages; returns both sides' keys.
std::pair<SessionKeys, SessionKeys> run(Handshake& i, Handshake& r) {
  r.read_msg1(i.write_msg1());
  i.read_msg2(r.write_msg2());
  r.read_msg3(i.write_msg3());
  return {i.keys(), r.keys()};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const HandshakeError& e) {
    return e.what();
  }
  return "";
}

TEST(Handshake, AgreesOnKeysAndProvesIdentities) {
  Party a, b;
  ClusterSecret s = generate_cluster_secret();
  Handshake i(Handshake::Role::initiator, config(a, s)), r(Handshake::Role::responder, config(b, s));
  auto [ki, kr] = run(i, r);
  EXPECT_EQ(ki.send_key.bytes, kr.recv_key.bytes);
  EXPECT_EQ(ki.recv_key.bytes, kr.send_key.bytes);
  EXPECT_NE(ki.send_key.bytes, ki.recv_key.bytes);
  EXPECT_EQ(ki.peer_static, b.id.public_key);
  EXPECT_EQ(kr.peer_static, a.id.public_key);
  EXPECT_FALSE(ki.plaintext);

  // Fresh ephemerals: the same parties get different session keys next time.
  Handshake i2(Handshake::Role::initiator, config(a, s)), r2(Handshake::Role::responder, config(b, s));
  auto [ki2, kr2] = run(i2, r2);
  EXPECT_NE(ki.send_key.bytes, ki2.send_key.bytes);
}

TEST(Handshake, WrongClusterSecretFailsAtFirstMessage) {
  Party a, b;
  Handshake i(Handshake::Role::initiator, config(a, generate_cluster_secret()));
  Handshake r(Handshake::Role::responder, config(b, generate_cluster_secret()));
  auto msg1 = i.write_msg1();
  EXPECT_NE(error_of([&] { r.read_msg1(msg1); }).find("does not hold this cluster's secret"), std::string::npos);
}

TEST(Handshake, InitiatorDetectsResponderWithWrongSecret) {
  // A responder that skips the check still cannot produce a message 2 the initiator accepts.
  Party a, b;
  ClusterSecret s = generate_cluster_secret();
  Handshake i(Handshake::Role::initiator, config(a, s));
  ClusterSecret other = generate_cluster_secret();
  Handshake other_i(Handshake::Role::initiator, config(a, other));
  Handshake r(Handshake::Role::responder, config(b, other));
  r.read_msg1(other_i.write_msg1());  // r shares its secret with other_i only
  auto msg2 = r.write_msg2();
  i.write_msg1();
  EXPECT_NE(error_of([&] { i.read_msg2(msg2); }).find("cannot authenticate the responder"), std::string::npos);
}

TEST(Handshake, AllowListAndPinning) {
  Party a, b, c;
  ClusterSecret s = generate_cluster_secret();
  auto rc = config(b, s);
  rc.allow_list = {c.id.public_key};
  Handshake i(Handshake::Role::initiator, config(a, s)), r(Handshake::Role::responder, rc);
  r.read_msg1(i.write_msg1());
  i.read_msg2(r.write_msg2());
  EXPECT_NE(error_of([&] { r.read_msg3(i.write_msg3()); }).find("not on the allow list"), std::string::npos);

  auto ic = config(a, s);
  ic.expected_peer = c.id.public_key;
  Handshake i2(Handshake::Role::initiator, ic), r2(Handshake::Role::responder, config(b, s));
  r2.read_msg1(i2.write_msg1());
  EXPECT_NE(error_of([&] { i2.read_msg2(r2.write_msg2()); }).find("not the expected key"), std::string::npos);

  rc.allow_list.push_back(a.id.public_key);
  Handshake i3(Handshake::Role::initiator, config(a, s)), r3(Handshake::Role::responder, rc);
  EXPECT_NO_THROW(run(i3, r3));
}

TEST(Handshake, EveryFlippedBitIsRefused) {
  Party a, b;
  ClusterSecret s = generate_cluster_secret();
  for (int msg = 1; msg <= 3; ++msg) {
    for (size_t bit = 0; bit < 8 * kMsg3Bytes; bit += 37) {
      Handshake i(Handshake::Role::initiator, config(a, s)), r(Handshake::Role::responder, config(b, s));
      auto flip = [&](std::vector<uint8_t> m) {
        size_t at = (bit / 8) % m.size();
        m[at] ^= static_cast<uint8_t>(1u << (bit % 8));
        return m;
      };
      auto m1 = i.write_msg1();
      bool refused = !error_of([&] {
                        r.read_msg1(msg == 1 ? flip(m1) : m1);
                        auto m2 = r.write_msg2();
                        i.read_msg2(msg == 2 ? flip(m2) : m2);
                        auto m3 = i.write_msg3();
                        r.read_msg3(msg == 3 ? flip(m3) : m3);
                      }).empty();
      EXPECT_TRUE(refused) << "message " << msg << " bit " << bit;
    }
  }
}

TEST(Handshake, OtherProtocolVersionIsRefusedWithARejectReply) {
  Party a, b;
  ClusterSecret s = generate_cluster_secret();
  auto old = config(a, s);
  old.protocol_version = 0;
  Handshake i(Handshake::Role::initiator, old), r(Handshake::Role::responder, config(b, s));
  std::string err = error_of([&] { r.read_msg1(i.write_msg1()); });
  EXPECT_NE(err.find("peer speaks protocol version 0, this node speaks version 1"), std::string::npos) << err;
  ASSERT_EQ(r.reject_bytes().size(), kHandshakeHeaderBytes);
  HandshakeHeader h = parse_handshake_header(r.reject_bytes());
  EXPECT_TRUE(h.reject);
  EXPECT_EQ(h.version, kProtocolVersion);
  err = error_of([&] { i.read_msg2(r.reject_bytes()); });
  EXPECT_NE(err.find("responder speaks protocol version 1"), std::string::npos) << err;
}

TEST(Handshake, PlaintextModeMustBeAgreed) {
  Party a, b;
  ClusterSecret s = generate_cluster_secret();
  auto ic = config(a, s);
  ic.plaintext_for_benchmark = true;
  Handshake i(Handshake::Role::initiator, ic), r(Handshake::Role::responder, config(b, s));
  EXPECT_NE(error_of([&] { r.read_msg1(i.write_msg1()); }).find("unencrypted"), std::string::npos);
}

TEST(Handshake, MisuseAndGarbageAreErrors) {
  Party a;
  ClusterSecret s = generate_cluster_secret();
  Handshake i(Handshake::Role::initiator, config(a, s)), r(Handshake::Role::responder, config(a, s));
  EXPECT_FALSE(error_of([&] { i.keys(); }).empty());
  EXPECT_FALSE(error_of([&] { i.read_msg2(std::vector<uint8_t>(kMsg2Bytes)); }).empty());  // before msg1
  EXPECT_FALSE(error_of([&] { r.read_msg1(std::vector<uint8_t>(3)); }).empty());
  std::vector<uint8_t> junk(kMsg1Bytes, 0x41);
  EXPECT_NE(error_of([&] { r.read_msg1(junk); }).find("bad magic"), std::string::npos);
}

// ---- SecureChannel ----

struct ChannelPair {
  std::unique_ptr<SecureChannel> a, b;
};

ChannelPair channels(size_t cap = 1 << 20, bool plaintext = false) {
  Party pa, pb;
  ClusterSecret s = generate_cluster_secret();
  auto ic = config(pa, s), rc = config(pb, s);
  ic.plaintext_for_benchmark = rc.plaintext_for_benchmark = plaintext;
  Handshake i(Handshake::Role::initiator, ic), r(Handshake::Role::responder, rc);
  auto [ki, kr] = run(i, r);
  ChannelPair p{std::make_unique<SecureChannel>(ki, cap), std::make_unique<SecureChannel>(kr, cap)};
  EXPECT_TRUE(p.a->accept_peer_header(p.b->local_header()));
  EXPECT_TRUE(p.b->accept_peer_header(p.a->local_header()));
  return p;
}

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return v;
}

SecureChannel::Opened open_frame(SecureChannel& c, const std::vector<std::byte>& frame, std::vector<std::byte>& out) {
  std::span<const std::byte, kFrameHeaderBytes> prefix(frame.data(), kFrameHeaderBytes);
  return c.open(prefix, std::span(frame).subspan(kFrameHeaderBytes), out);
}

TEST(Channel, RoundTripAndCiphertextHidesPlaintext) {
  auto p = channels();
  std::vector<std::byte> f1, out;
  auto msg = bytes_of("hidden state bytes hidden state bytes");
  p.a->seal(msg, false, f1);
  EXPECT_EQ(f1.size(), kFrameHeaderBytes + msg.size() + kFrameOverhead);
  EXPECT_EQ(std::search(f1.begin(), f1.end(), msg.begin(), msg.begin() + 12), f1.end());
  auto r = open_frame(*p.b, f1, out);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(out, msg);
}

TEST(Channel, ReplayReorderFlipAndLengthTamperingFail) {
  {
    auto p = channels();
    std::vector<std::byte> f1, out;
    p.a->seal(bytes_of("one"), false, f1);
    ASSERT_TRUE(open_frame(*p.b, f1, out).ok);
    auto replay = open_frame(*p.b, f1, out);
    EXPECT_FALSE(replay.ok);
    EXPECT_NE(replay.error.find("failed authentication"), std::string::npos);
  }
  {
    auto p = channels();
    std::vector<std::byte> f1, f2, out;
    p.a->seal(bytes_of("one"), false, f1);
    p.a->seal(bytes_of("two"), false, f2);
    EXPECT_FALSE(open_frame(*p.b, f2, out).ok);  // reordered
  }
  for (size_t bit = 0; bit < 8 * 24; bit += 5) {
    auto p = channels();
    std::vector<std::byte> f, out;
    p.a->seal(bytes_of("payload"), false, f);
    f[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
    EXPECT_FALSE(open_frame(*p.b, f, out).ok) << "bit " << bit;
  }
  {
    auto p = channels();  // a frame from another session
    auto q = channels();
    std::vector<std::byte> f, out;
    q.a->seal(bytes_of("elsewhere"), false, f);
    EXPECT_FALSE(open_frame(*p.b, f, out).ok);
  }
}

TEST(Channel, FinalFrameEndsTheStream) {
  auto p = channels();
  std::vector<std::byte> f1, f2, out;
  p.a->seal(bytes_of("bye"), true, f1);
  p.a->seal(bytes_of("after"), false, f2);
  auto r = open_frame(*p.b, f1, out);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.final);
  EXPECT_FALSE(open_frame(*p.b, f2, out).ok);
}

TEST(Channel, LengthCap) {
  auto p = channels(1000);
  std::vector<std::byte> f;
  EXPECT_THROW(p.a->seal(std::vector<std::byte>(1001), false, f), std::length_error);
  size_t len = 0;
  std::string err;
  std::array<std::byte, 4> prefix{std::byte{0xff}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}};
  EXPECT_FALSE(parse_frame_length(prefix, p.b->max_body_bytes(), len, err));
  EXPECT_NE(err.find("exceeds the cap"), std::string::npos);
  prefix = {std::byte{0xf9}, std::byte{0x03}, std::byte{0}, std::byte{0}};  // 1017 = 1000 + tag
  EXPECT_TRUE(parse_frame_length(prefix, p.b->max_body_bytes(), len, err));
  EXPECT_EQ(len, 1017u);
}

TEST(Channel, PlaintextModeSkipsEncryption) {
  auto p = channels(1 << 20, true);
  EXPECT_TRUE(p.a->plaintext());
  std::vector<std::byte> f, out;
  auto msg = bytes_of("visible");
  p.a->seal(msg, false, f);
  EXPECT_EQ(f.size(), kFrameHeaderBytes + msg.size());
  ASSERT_TRUE(open_frame(*p.b, f, out).ok);
  EXPECT_EQ(out, msg);
}

}  // namespace
}  // namespace zen::transport
