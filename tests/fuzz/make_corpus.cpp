// Writes the seed corpus for the fuzz targets into the folder given as argv[1]
// (tests/fuzz/corpus): valid messages, valid frame streams under the fixed
// fuzz key, and real handshake messages.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "tests/fuzz/fuzz_keys.h"
#include "transport/channel.h"
#include "transport/codec.h"

namespace fs = std::filesystem;
using namespace zen::transport;

namespace {

void write(const fs::path& p, const void* data, size_t n) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

std::vector<std::pair<std::string, Message>> seeds() {
  std::vector<float> v(2 * 16);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) - 8.0f;
  return {
      {"hello", Hello{"node-a", {}, 1 << 30, 8, "avx2 fma", 20.0, {1, 2, 3, 4}, "127.0.0.1:7070"}},
      {"plan", Plan{3, {5, 6}, DType::f16, {{"a", 0, 11, "10.0.0.1:7070", PublicKey{}}, {"b", 11, 22, "", {}}}, 9.5}},
      {"start", StartRequest{1, {0}, {}, {}, 0}},
      {"forward_tokens", Forward{1, {0, 0}, {0, 1}, {15043, 3186}, {}, false, true, {}}},
      {"forward_hidden", Forward{1, {0, 0}, {2, 3}, {}, encode_activations(v, {2, 16}, DType::f32), true, false, {}}},
      {"forward_bf16", Forward{1, {0, 0}, {2, 3}, {}, encode_activations(v, {2, 16}, DType::bf16), true, false, {}}},
      {"sampled", SampledTokens{1, {0}, {29871}, true, encode_activations(v, {1, 32}, DType::f16)}},
      {"clear", ClearSequence{1, {0, 1}}},
      {"weight_request", WeightRequest{{9, 9}, 0}},
      {"weight_chunk", WeightChunk{{9, 9}, 0, 16, std::vector<std::byte>(16, std::byte{1})}},
      {"heartbeat", Heartbeat{100, 0.5f}},
      {"ping", Ping{1, 2, {}}},
      {"pong", Pong{1, 2, 3}},
      {"error", Error{ErrorCode::bad_request, "no"}},
      {"goodbye", Goodbye{"bye"}},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_corpus <tests/fuzz/corpus>\n";
    return 2;
  }
  fs::path root = argv[1];
  auto all = seeds();
  for (auto& [name, m] : all) {
    auto b = encode(m);
    write(root / "message" / name, b.data(), b.size());
  }
  // Frame streams: header + a few frames, the last one final.
  for (size_t start = 0; start < all.size(); start += 5) {
    SecureChannel tx(fuzz::frame_keys(true), fuzz::kFuzzMaxFrame);
    std::vector<std::byte> stream(tx.local_header().size());
    std::memcpy(stream.data(), tx.local_header().data(), stream.size());
    for (size_t i = start; i < std::min(start + 5, all.size()); ++i) {
      tx.seal(encode(all[i].second), i + 1 == std::min(start + 5, all.size()), stream);
    }
    write(root / "frame" / ("stream" + std::to_string(start / 5)), stream.data(), stream.size());
  }
  // Handshake: the three real messages, each behind its selector byte.
  HandshakeConfig c;
  c.identity = generate_keypair();
  c.cluster_secret.key.bytes.fill(7);
  Handshake i(Handshake::Role::initiator, c), r(Handshake::Role::responder, c);
  auto m1 = i.write_msg1();
  r.read_msg1(m1);
  auto m2 = r.write_msg2();
  i.read_msg2(m2);
  auto m3 = i.write_msg3();
  int sel = 1;
  for (auto* m : {&m1, &m2, &m3}) {
    std::vector<uint8_t> b{static_cast<uint8_t>(sel)};
    b.insert(b.end(), m->begin(), m->end());
    write(root / "handshake" / ("msg" + std::to_string(sel)), b.data(), b.size());
    ++sel;
  }
  std::vector<uint8_t> hdr{0};
  auto h = make_handshake_header({kProtocolVersion, false, false});
  hdr.insert(hdr.end(), h.begin(), h.end());
  write(root / "handshake" / "header", hdr.data(), hdr.size());
  std::cout << "corpus written to " << root << "\n";
  return 0;
}
