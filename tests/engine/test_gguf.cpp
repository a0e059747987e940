// GGUF reader/writer: round trips of every value type, and one hand-made corruption per
// error class, each giving a GgufError that names the file, the field and the offset.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "tests/engine/testdata.h"

namespace zen::engine {
namespace {

std::vector<std::byte> small_file() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 1);
  w.set_i32("i32", -5);
  w.set_u64("u64", 1ull << 40);
  w.set_f32("f32", 0.25f);
  w.set_bool("flag", true);
  w.set_strings("tokenizer.ggml.tokens", {"a", "bb", "", "dddd"});
  w.set_f32s("scores", {1.5f, -2.0f});
  w.set_i32s("types", {1, 2, 3});
  std::vector<float> data(64);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  w.add_tensor("t0", kernels::DType::F32, {16, 4}, std::as_bytes(std::span(data)));
  w.add_tensor("t1", kernels::DType::F32, {8}, std::as_bytes(std::span(data).subspan(0, 8)));
  return w.to_bytes();
}

GgufFile parse(const std::vector<std::byte>& b) { return GgufFile::parse(b, "test.gguf"); }

// Expects a GgufError whose message contains every fragment.
void expect_error(const std::vector<std::byte>& b, std::initializer_list<const char*> fragments) {
  try {
    parse(b);
    FAIL() << "parse succeeded, expected an error";
  } catch (const GgufError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("test.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
    for (const char* f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
  }
}

// Offset of the first occurrence of a byte pattern.
size_t find(const std::vector<std::byte>& b, std::string_view s) {
  auto it = std::search(b.begin(), b.end(), reinterpret_cast<const std::byte*>(s.data()),
                        reinterpret_cast<const std::byte*>(s.data() + s.size()));
  EXPECT_NE(it, b.end()) << s;
  return static_cast<size_t>(it - b.begin());
}

template <typename T>
void poke(std::vector<std::byte>& b, size_t at, T v) { std::memcpy(b.data() + at, &v, sizeof v); }

TEST(Gguf, RoundTripsEveryValueType) {
  const auto b = small_file();
  const GgufFile f = parse(b);
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 1);
  EXPECT_EQ(f.get_int("i32"), -5);
  EXPECT_EQ(f.get_int("u64"), int64_t{1} << 40);
  EXPECT_FLOAT_EQ(*f.get_float("f32"), 0.25f);
  EXPECT_EQ(f.get_bool("flag"), true);
  ASSERT_NE(f.get_string_array("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(*f.get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "bb", "", "dddd"}));
  EXPECT_EQ(*f.get_float_array("scores"), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(*f.get_int_array("types"), (std::vector<int64_t>{1, 2, 3}));
  ASSERT_EQ(f.tensors.size(), 2u);
  const TensorInfo* t0 = f.find_tensor("t0");
  ASSERT_NE(t0, nullptr);
  EXPECT_EQ(t0->ne[0], 16);
  EXPECT_EQ(t0->ne[1], 4);
  EXPECT_EQ(t0->bytes, 256u);
  EXPECT_EQ(f.data_offset % 32, 0u);
  float v;
  std::memcpy(&v, b.data() + f.data_offset + t0->offset + 5 * sizeof(float), sizeof v);
  EXPECT_EQ(v, 5.0f);
  EXPECT_EQ(f.find_tensor("t1")->offset % 32, 0u);
}

TEST(Gguf, WrongTypeGetterNamesTheKey) {
  const GgufFile f = parse(small_file());
  try {
    (void)f.get_int("general.architecture");
    FAIL();
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("general.architecture"), std::string::npos);
  }
  EXPECT_FALSE(f.get_int("absent").has_value());
}

TEST(Gguf, ReadsVersion2) {
  auto b = small_file();
  poke<uint32_t>(b, 4, 2);
  EXPECT_EQ(parse(b).version, 2u);
}

TEST(GgufCorrupt, BadMagic) {
  auto b = small_file();
  b[0] = std::byte{'X'};
  expect_error(b, {"magic"});
}

TEST(GgufCorrupt, UnsupportedVersion) {
  auto b = small_file();
  poke<uint32_t>(b, 4, 7);
  expect_error(b, {"version", "7"});
}

TEST(GgufCorrupt, TruncatedEverywhere) {
  const auto b = small_file();
  const GgufFile f = parse(b);
  // Every prefix shorter than the data end must fail cleanly (never crash).
  for (size_t n = 0; n < b.size(); n += (n < f.data_offset ? 1 : 97)) {
    std::vector<std::byte> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(parse(cut), GgufError) << "prefix " << n;
  }
}

TEST(GgufCorrupt, HugeTensorCount) {
  auto b = small_file();
  poke<uint64_t>(b, 8, ~uint64_t{0});
  expect_error(b, {"tensor count", "exceeds cap"});
}

TEST(GgufCorrupt, HugeMetadataCount) {
  auto b = small_file();
  poke<uint64_t>(b, 16, uint64_t{1} << 40);
  expect_error(b, {"metadata count"});
}

TEST(GgufCorrupt, HugeStringLength) {
  auto b = small_file();
  // the first key's length field is right after the header (offset 24)
  poke<uint64_t>(b, 24, uint64_t{1} << 62);
  expect_error(b, {"metadata key", "exceeds cap"});
}

TEST(GgufCorrupt, UnknownValueType) {
  auto b = small_file();
  const size_t at = find(b, "general.architecture") + std::strlen("general.architecture");
  poke<uint32_t>(b, at, 99);
  expect_error(b, {"general.architecture", "unknown value type 99"});
}

TEST(GgufCorrupt, ArrayCountPastEnd) {
  auto b = small_file();
  // tokens: key, u32 type ARRAY, u32 elem type STRING, u64 count
  const size_t at = find(b, "tokenizer.ggml.tokens") + std::strlen("tokenizer.ggml.tokens") + 8;
  poke<uint64_t>(b, at, uint64_t{1} << 24);
  expect_error(b, {"tokenizer.ggml.tokens"});
}

TEST(GgufCorrupt, DuplicateKey) {
  auto b = small_file();
  const size_t at = find(b, "i32");
  std::memcpy(b.data() + at, "f32", 3);  // now two keys named f32
  expect_error(b, {"duplicate key", "f32"});
}

TEST(GgufCorrupt, DuplicateTensorName) {
  auto b = small_file();
  const size_t at = find(b, "t1");
  b[at + 1] = std::byte{'0'};
  expect_error(b, {"duplicate tensor name", "t0"});
}

TEST(GgufCorrupt, UnknownTensorType) {
  auto b = small_file();
  // t1: name, u32 n_dims=1, u64 ne0, u32 type
  const size_t at = find(b, "t1") + 2 + 4 + 8;
  poke<uint32_t>(b, at, 77);
  expect_error(b, {"tensor 't1'", "unsupported tensor type id 77"});
}

TEST(GgufCorrupt, TooManyDims) {
  auto b = small_file();
  poke<uint32_t>(b, find(b, "t1") + 2, 9);
  expect_error(b, {"t1", "dimensions"});
}

TEST(GgufCorrupt, ZeroDimension) {
  auto b = small_file();
  poke<uint64_t>(b, find(b, "t1") + 2 + 4, 0);
  expect_error(b, {"t1", "invalid dimension"});
}

TEST(GgufCorrupt, ElementCountOverflow) {
  auto b = small_file();
  const size_t at = find(b, "t0") + 2 + 4;
  poke<uint64_t>(b, at, uint64_t{1} << 40);
  poke<uint64_t>(b, at + 8, uint64_t{1} << 40);
  expect_error(b, {"t0", "overflows"});
}

TEST(GgufCorrupt, MisalignedOffset) {
  auto b = small_file();
  poke<uint64_t>(b, find(b, "t1") + 2 + 4 + 8 + 4, 3);
  expect_error(b, {"t1", "not aligned"});
}

TEST(GgufCorrupt, TensorPastEndOfFile) {
  auto b = small_file();
  poke<uint64_t>(b, find(b, "t1") + 2 + 4 + 8 + 4, uint64_t{1} << 30);
  expect_error(b, {"t1", "past the end"});
}

TEST(GgufCorrupt, OverlappingTensors) {
  auto b = small_file();
  poke<uint64_t>(b, find(b, "t1") + 2 + 4 + 8 + 4, 0);
  expect_error(b, {"overlaps"});
}

TEST(GgufCorrupt, BadAlignmentValue) {
  GgufWriter w;
  w.set_u32("general.alignment", 48);
  expect_error(w.to_bytes(), {"general.alignment", "power of two"});
}

TEST(GgufCorrupt, BadBool) {
  auto b = small_file();
  const size_t at = find(b, "flag") + 4 + 4;
  b[at] = std::byte{7};
  expect_error(b, {"flag", "bool"});
}

TEST(GgufCorrupt, RowNotMultipleOfBlock) {
  GgufWriter w;
  std::vector<std::byte> q(34);
  w.add_tensor("q", kernels::DType::Q8_0, {32}, q);
  auto b = w.to_bytes();
  poke<uint64_t>(b, find(b, "q") + 1 + 4, 31);
  expect_error(b, {"q", "block size"});
}

TEST(Gguf, MappedFileOpensRealModel) {
  ZEN_REQUIRE_TESTDATA();
  auto f = GgufModelFile::open((test::testdata_dir() / "models" / "stories260K.gguf").string());
  EXPECT_EQ(f->gguf().get_string("general.architecture"), "llama");
  EXPECT_GT(f->gguf().tensors.size(), 40u);
}

TEST(Gguf, OpenMissingFileIsAClearError) {
  try {
    GgufModelFile::open("/nonexistent/model.gguf");
    FAIL();
  } catch (const GgufError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace zen::engine
