// The committed fuzz seed corpus must stay valid for the current wire format,
// or the fuzzers start from nothing. Regenerate with fuzz_make_corpus.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/fuzz/fuzz_keys.h"
#include "transport/channel.h"
#include "transport/codec.h"

namespace zen::transport {
namespace {
namespace fs = std::filesystem;

std::vector<std::byte> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

const fs::path kCorpus = fs::path(ZEN_SOURCE_DIR) / "tests" / "fuzz" / "corpus";

TEST(FuzzCorpus, MessageSeedsDecode) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(kCorpus / "message")) {
    DecodeResult r = decode(slurp(e.path()));
    EXPECT_TRUE(r.ok()) << e.path() << ": " << r.error;
    ++n;
  }
  EXPECT_GE(n, 13u);
}

TEST(FuzzCorpus, FrameSeedsOpenAndDecode) {
  size_t streams = 0;
  for (auto& e : fs::directory_iterator(kCorpus / "frame")) {
    auto b = slurp(e.path());
    ASSERT_GE(b.size(), kStreamHeaderBytes);
    SecureChannel ch(fuzz::frame_keys(false), fuzz::kFuzzMaxFrame);
    ASSERT_TRUE(ch.accept_peer_header({reinterpret_cast<const uint8_t*>(b.data()), kStreamHeaderBytes}));
    std::span<const std::byte> rest = std::span(b).subspan(kStreamHeaderBytes);
    bool final = false;
    std::vector<std::byte> plain;
    while (!rest.empty()) {
      std::span<const std::byte, kFrameHeaderBytes> prefix(rest.data(), kFrameHeaderBytes);
      size_t len = 0;
      std::string err;
      ASSERT_TRUE(parse_frame_length(prefix, ch.max_body_bytes(), len, err)) << err;
      auto opened = ch.open(prefix, rest.subspan(kFrameHeaderBytes, len), plain);
      ASSERT_TRUE(opened.ok) << e.path() << ": " << opened.error;
      EXPECT_TRUE(decode(plain).ok());
      final = opened.final;
      rest = rest.subspan(kFrameHeaderBytes + len);
    }
    EXPECT_TRUE(final) << e.path();
    ++streams;
  }
  EXPECT_GE(streams, 1u);
}

}  // namespace
}  // namespace zen::transport
