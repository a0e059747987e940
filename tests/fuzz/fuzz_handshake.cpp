// Fuzzes the handshake parsers: first byte picks the message (1, 2 or 3), the
// rest is that message. A refusal is a HandshakeError; anything else escaping is a bug.
#include "transport/handshake.h"

namespace {

zen::transport::HandshakeConfig config() {
  static const zen::transport::KeyPair id = zen::transport::generate_keypair();
  static const zen::transport::ClusterSecret secret = [] {
    zen::transport::ClusterSecret s;
    s.key.bytes.fill(7);
    return s;
  }();
  zen::transport::HandshakeConfig c;
  c.identity = id;
  c.cluster_secret = secret;
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zen::transport;
  if (size < 1) return 0;
  std::span<const uint8_t> msg(data + 1, size - 1);
  try {
    switch (data[0] % 4) {
      case 0:
        parse_handshake_header(msg);
        break;
      case 1: {
        Handshake r(Handshake::Role::responder, config());
        r.read_msg1(msg);
        r.write_msg2();
        break;
      }
      case 2: {
        Handshake i(Handshake::Role::initiator, config());
        i.write_msg1();
        i.read_msg2(msg);
        i.write_msg3();
        i.keys();
        break;
      }
      case 3: {
        Handshake i(Handshake::Role::initiator, config()), r(Handshake::Role::responder, config());
        r.read_msg1(i.write_msg1());
        i.read_msg2(r.write_msg2());
        r.read_msg3(msg);
        r.keys();
        break;
      }
    }
  } catch (const HandshakeError&) {
  }
  return 0;
}
