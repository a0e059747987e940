// The safetensors parser, the checkpoint folder view and the SentencePiece protobuf reader:
// valid files round-trip, and one hand-made corrupt input per error class is rejected.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/convert_spm.h"
#include "engine/safetensors.h"
#include "tests/convert/convert_test_util.h"

namespace zen {
namespace {

using engine::SafetensorsError;
using engine::SafetensorsFile;
using engine::StDType;
using nlohmann::json;

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// A file with the given header JSON text (length prefix computed) and `data_len` data bytes.
std::vector<std::byte> with_header(const std::string& header, size_t data_len) {
  std::vector<std::byte> b(8);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[static_cast<size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
  const auto h = bytes_of(header);
  b.insert(b.end(), h.begin(), h.end());
  b.resize(b.size() + data_len, std::byte{0x11});
  return b;
}

void expect_error(const std::vector<std::byte>& b, const std::string& needle, const engine::SafetensorsLimits& lim = {}) {
  try {
    SafetensorsFile::parse(b, "bad.safetensors", lim);
    ADD_FAILURE() << "accepted; expected an error containing '" << needle << "'";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTrip) {
  std::vector<engine::StWriteTensor> ts;
  ts.push_back({"b", StDType::F32, {2, 3}, std::vector<std::byte>(24, std::byte{1})});
  ts.push_back({"a", StDType::BF16, {5}, std::vector<std::byte>(10, std::byte{2})});
  ts.push_back({"scalar", StDType::I64, {}, std::vector<std::byte>(8, std::byte{3})});
  ts.push_back({"empty", StDType::F16, {0, 4}, {}});
  const auto bytes = engine::write_safetensors(ts, {{"format", "pt"}});
  const auto f = SafetensorsFile::parse(bytes, "ok");
  EXPECT_EQ(f.data_offset % 8, 0u);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  ASSERT_EQ(f.tensors.size(), 4u);
  const auto* b = f.find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, StDType::F32);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->end - b->begin, 24u);
  EXPECT_EQ(static_cast<uint8_t>(bytes[f.data_offset + b->begin]), 1);
  EXPECT_EQ(f.find("a")->n_elements(), 5);
  EXPECT_EQ(f.find("scalar")->n_elements(), 1);
  EXPECT_EQ(f.find("empty")->n_elements(), 0);
}

TEST(Safetensors, CorruptInputs) {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  expect_error(bytes_of("abc"), "shorter than the 8-byte");
  {
    auto b = with_header("{" + ok_entry + "}", 8);
    b[0] = std::byte{0xff}, b[1] = std::byte{0xff}, b[2] = std::byte{0x7f};
    expect_error(b, "past the end of the file");
  }
  {
    engine::SafetensorsLimits lim;
    lim.max_header = 16;
    expect_error(with_header("{" + ok_entry + "}", 8), "exceeds the cap", lim);
  }
  expect_error(with_header("[1,2]", 0), "does not start with '{'");
  expect_error(with_header("{\"t\": ", 0), "not a valid JSON object");
  expect_error(with_header(R"({"t":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8), "unknown dtype 'Q4'");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8), "non-array shape");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative integers");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), "[begin, end]");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "begin 8 > end 0");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8), "past the data section");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8), "overflows");
  expect_error(with_header(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", 8), "unknown field 'x'");
  expect_error(with_header(R"({"t":[1]})", 8), "is not an object");
  expect_error(with_header(R"({"__metadata__":{"k":1}})", 0), "is not a string");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12),
               "overlap");
}

TEST(Safetensors, CheckpointShardsAndIndex) {
  test::TempDir tmp("st_index");
  auto shard = [&](const std::string& file, const std::string& name) {
    std::vector<engine::StWriteTensor> ts = {{name, StDType::F32, {1}, std::vector<std::byte>(4)}};
    test::write_bytes(tmp.path() / file, engine::write_safetensors(ts));
  };
  shard("a.safetensors", "x");
  shard("b.safetensors", "y");
  auto index = [&](const json& wm) { test::write_text(tmp.path() / "model.safetensors.index.json", json{{"weight_map", wm}}.dump()); };
  index({{"x", "a.safetensors"}, {"y", "b.safetensors"}});
  auto ck = engine::SafetensorsCheckpoint::open(tmp.path().string());
  EXPECT_EQ(ck.n_files(), 2u);
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(ck.at("y").bytes().size(), 4u);
  EXPECT_EQ(ck.find("z"), nullptr);

  index({{"x", "a.safetensors"}, {"y", "../b.safetensors"}});
  EXPECT_THROW(engine::SafetensorsCheckpoint::open(tmp.path().string()), SafetensorsError);
  index({{"x", "a.safetensors"}, {"y", "a.safetensors"}});  // y is really in b, which is not listed
  EXPECT_THROW(engine::SafetensorsCheckpoint::open(tmp.path().string()), SafetensorsError);
  index({{"x", "a.safetensors"}, {"y", "b.safetensors"}, {"w", "b.safetensors"}});
  EXPECT_THROW(engine::SafetensorsCheckpoint::open(tmp.path().string()), SafetensorsError);
  index({{"x", "a.safetensors"}, {"y", "c.safetensors"}});  // missing file
  EXPECT_ANY_THROW(engine::SafetensorsCheckpoint::open(tmp.path().string()));

  // Without an index every *.safetensors is used, and a name in two files is an error.
  std::filesystem::remove(tmp.path() / "model.safetensors.index.json");
  EXPECT_EQ(engine::SafetensorsCheckpoint::open(tmp.path().string()).names().size(), 2u);
  shard("c.safetensors", "x");
  EXPECT_THROW(engine::SafetensorsCheckpoint::open(tmp.path().string()), SafetensorsError);
}

// --- SentencePiece protobuf ---

TEST(SpmProto, RoundTrip) {
  engine::SpmModel m;
  m.pieces = {{"<unk>", 0, 2}, {"<s>", 0, 3}, {"\xE2\x96\x81the", -1.5f, 1}, {"<0x41>", 0, 6}};
  m.model_type = 2;
  m.pad_id = -1;
  m.bos_id = 1;
  m.byte_fallback = true;
  m.add_dummy_prefix = false;
  const auto b = engine::write_spm_model(m);
  const auto r = engine::parse_spm_model(b, "t.model");
  ASSERT_EQ(r.pieces.size(), 4u);
  EXPECT_EQ(r.pieces[2].piece, "\xE2\x96\x81the");
  EXPECT_FLOAT_EQ(r.pieces[2].score, -1.5f);
  EXPECT_EQ(r.pieces[0].type, 2);
  EXPECT_EQ(r.pieces[2].type, 1);
  EXPECT_EQ(r.pieces[3].type, 6);
  EXPECT_EQ(r.model_type, 2);
  EXPECT_EQ(r.pad_id, -1);
  EXPECT_TRUE(r.byte_fallback);
  EXPECT_FALSE(r.add_dummy_prefix);
}

void expect_proto_error(const std::vector<uint8_t>& raw, const std::string& needle) {
  std::vector<std::byte> b(raw.size());
  std::memcpy(b.data(), raw.data(), raw.size());
  try {
    engine::parse_spm_model(b, "bad.model");
    ADD_FAILURE() << "accepted; expected '" << needle << "'";
  } catch (const engine::ProtobufError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(SpmProto, CorruptInputs) {
  expect_proto_error({0x0a}, "truncated varint");                        // tag, no length
  expect_proto_error({0x0a, 0x05, 0x0a, 0x01}, "past the end");         // piece message longer than the file
  expect_proto_error({0x0a, 0x03, 0x0a, 0x05, 0x61}, "past the end");   // piece string longer than its message
  expect_proto_error({0x0a, 0x02, 0x10, 0x01}, "SentencePiece.score: wire type 0");
  expect_proto_error({0x0a, 0x04, 0x0a, 0x00, 0x18, 0x09}, "is not 1..6");
  expect_proto_error({0x2b}, "unsupported wire type 3");                 // group start (field 5)
  expect_proto_error({0x00}, "bad field number");
  expect_proto_error({0x0a, 0x02, 0x15, 0x00}, "truncated fixed32");
  expect_proto_error({0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "longer than 10 bytes");
  expect_proto_error({0x12, 0x00}, "no pieces");
}

}  // namespace
}  // namespace zen
