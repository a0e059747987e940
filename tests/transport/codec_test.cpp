// Message codec: round trips for every message, and one hand-made corrupt input per refusal class.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "transport/codec.h"

namespace zen::transport {
namespace {

TensorBuf sample_tensor(DType t, uint32_t rows, uint32_t cols) {
  std::vector<float> v(size_t{rows} * cols);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.25f - 3.0f;
  return encode_activations(v, {rows, cols}, t);
}

std::vector<Message> all_messages() {
  Hello hello{"node-a", {}, 64ull << 30, 16, "avx2 fma f16c", 41.5, {1, 2, 3}, "10.0.0.2:7070"};
  hello.static_key[0] = 7;
  hello.static_key[31] = 9;
  Plan plan{42, {9, 9, 9}, DType::bf16, {{"a", 0, 10, "10.0.0.1:7070", hello.static_key}, {"b", 10, 22, "", {}}}, 17.5};
  StartRequest start{7, {1, 2}, {0.7f, 20, 0.9f, 0.1f, 1.1f, 32, 1234}, {1, 403, 407}, 2};
  Forward fwd{7, {1, 1, 2}, {0, 1, 0}, {}, sample_tensor(DType::f32, 3, 8), true, false, {}};
  Forward first{8, {3}, {5}, {42}, {}, false, true, {}};
  Forward spec{9, {4, 4, 4}, {10, 11, 12}, {7, 8, 9}, {}, true, false, {8, 9}};
  SampledTokens sampled{7, {1, 2}, {100, 200}, true, sample_tensor(DType::f16, 2, 5)};
  ClearSequence clear{7, {1, 2, 3}};
  WeightRequest wreq{{0xab, 0xcd}, 4096};
  WeightChunk chunk{{0xab, 0xcd}, 4096, 10000, std::vector<std::byte>(100, std::byte{0x5a})};
  return {hello,          plan,           start,        fwd,       first,       spec,
          sampled,        clear,          wreq,         chunk,     Heartbeat{123456789, 0.5f, 1 << 20, 2.5, 77},
          Ping{1, 2, {}},     Pong{1, 2, 3},  Error{ErrorCode::overloaded, "busy"}, Goodbye{"shutting down"},
          StageReady{42, false, "not enough memory"}};
}

TEST(Codec, EveryMessageRoundTrips) {
  for (const Message& m : all_messages()) {
    auto bytes = encode(m);
    DecodeResult r = decode(bytes);
    ASSERT_TRUE(r.ok()) << message_name(m) << ": " << r.error;
    EXPECT_EQ(r.message->index(), m.index()) << message_name(m);
    EXPECT_TRUE(*r.message == m) << message_name(m);
  }
}

TEST(Codec, EncodeRefusesInconsistentMessages) {
  Forward f{1, {1, 2}, {0}, {}, {}, false, false, {}};
  EXPECT_THROW(encode(f), std::invalid_argument);
  Forward g{1, {1}, {0}, {}, sample_tensor(DType::f32, 1, 4), false, false, {}};
  g.hidden.bytes.pop_back();
  EXPECT_THROW(encode(g), std::invalid_argument);
  Forward d{1, {1, 1}, {0, 1}, {5, 6}, {}, true, false, {6, 7}};  // two drafts need three rows
  EXPECT_THROW(encode(d), std::invalid_argument);
}

// The envelope's data section starts right after the segment table (8 bytes)
// and the root pointer (8 bytes): protocolVersion at 16, union tag at 18.
TEST(Codec, OtherProtocolVersionIsRefused) {
  auto bytes = encode(Heartbeat{1, 0});
  uint16_t v;
  std::memcpy(&v, bytes.data() + 16, 2);
  ASSERT_EQ(v, kProtocolVersion);
  for (uint16_t other : {uint16_t{0}, uint16_t{kProtocolVersion + 1}}) {
    std::memcpy(bytes.data() + 16, &other, 2);
    DecodeResult r = decode(bytes);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("protocol version " + std::to_string(other) + " is not supported"), std::string::npos)
        << r.error;
  }
}

TEST(Codec, UnknownMessageTypeIsRefused) {
  auto bytes = encode(Heartbeat{1, 0});
  uint16_t tag = 200;
  std::memcpy(bytes.data() + 18, &tag, 2);
  DecodeResult r = decode(bytes);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("unknown message type"), std::string::npos) << r.error;
}

TEST(Codec, LengthAndFramingErrors) {
  auto bytes = encode(Goodbye{"x"});
  EXPECT_FALSE(decode(std::span(bytes).first(bytes.size() - 3)).ok());  // not whole words
  EXPECT_FALSE(decode(std::span(bytes).first(bytes.size() - 8)).ok());  // truncated segment
  EXPECT_FALSE(decode(std::span(bytes).first(0)).ok());
  auto longer = bytes;
  longer.resize(bytes.size() + 8);
  DecodeResult trailing = decode(longer);
  EXPECT_FALSE(trailing.ok());
  EXPECT_NE(trailing.error.find("trailing"), std::string::npos) << trailing.error;
  auto huge = bytes;
  uint32_t segs = 0x7ffffff0;  // segment count far beyond the bytes given
  std::memcpy(huge.data(), &segs, 4);
  EXPECT_FALSE(decode(huge).ok());
  DecodeLimits tight;
  tight.max_bytes = bytes.size() - 8;
  EXPECT_FALSE(decode(bytes, tight).ok());
}

TEST(Codec, UnalignedInputIsHandled) {
  auto bytes = encode(Ping{5, 6, {}});
  std::vector<std::byte> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  DecodeResult r = decode(std::span(shifted).subspan(1));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(*r.message == Message(Ping{5, 6, {}}));
}

TEST(Codec, FieldCapsAndValueChecks) {
  Hello h;
  h.node_name = std::string(300, 'n');
  DecodeResult r = decode(encode(h));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("node_name"), std::string::npos) << r.error;

  DecodeResult e = decode(encode(Error{static_cast<ErrorCode>(77), "?"}));
  EXPECT_FALSE(e.ok());
  EXPECT_NE(e.error.find("unknown error code 77"), std::string::npos) << e.error;

  DecodeResult w = decode(encode(WeightChunk{{1}, 90, 100, std::vector<std::byte>(20)}));
  EXPECT_FALSE(w.ok());
  EXPECT_NE(w.error.find("exceeds total"), std::string::npos) << w.error;

  DecodeLimits shallow;
  shallow.nesting_limit = 1;
  EXPECT_FALSE(decode(encode(Forward{1, {1}, {0}, {}, sample_tensor(DType::f32, 1, 2), false, false, {}}), shallow).ok());
}

TEST(Codec, TensorShapeMustMatchBytes) {
  // Shape dims 0x12345 and 1 are easy to find in the encoded bytes.
  std::vector<float> v(0x12345);
  Forward f{1, {1}, {0}, {}, encode_activations(v, {1, 0x12345}, DType::f32), false, false, {}};
  auto bytes = encode(f);
  const uint32_t marker = 0x12345;
  size_t at = 0;
  for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
    if (std::memcmp(bytes.data() + i, &marker, 4) == 0) {
      at = i;
      break;
    }
  }
  ASSERT_NE(at, 0u);
  const uint32_t wrong = 0x12346;
  std::memcpy(bytes.data() + at, &wrong, 4);
  DecodeResult r = decode(bytes);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("tensor shape"), std::string::npos) << r.error;
}

TEST(Codec, RandomGarbageNeverDecodesOrThrows) {
  std::mt19937_64 rng(7);
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::byte> junk(8 * (1 + rng() % 64));
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    DecodeResult r = decode(junk);
    if (r.ok()) ++accepted;
    else EXPECT_FALSE(r.error.empty());
  }
  EXPECT_EQ(accepted, 0);
}

TEST(Codec, MutatedMessagesNeverCrash) {
  std::mt19937_64 rng(11);
  auto msgs = all_messages();
  for (int i = 0; i < 3000; ++i) {
    auto bytes = encode(msgs[rng() % msgs.size()]);
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
    DecodeResult r = decode(bytes);
    EXPECT_TRUE(r.ok() || !r.error.empty());
  }
}

}  // namespace
}  // namespace zen::transport
