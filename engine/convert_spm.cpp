#include "engine/convert_spm.h"

#include <cstring>

namespace zen::engine {

namespace {

enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// A protobuf message: a span and a cursor; every read checked against the bytes left.
class PbReader {
 public:
  PbReader(std::span<const std::byte> b, std::string_view file, size_t base) : b_(b), file_(file), base_(base) {}
  bool done() const { return pos_ >= b_.size(); }

  uint64_t varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= b_.size()) fail(std::string("truncated varint in ") + what);
      const auto byte = static_cast<uint8_t>(b_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
    fail(std::string("varint longer than 10 bytes in ") + what);
  }

  // Field number and wire type of the next field.
  std::pair<uint32_t, uint32_t> tag(const char* msg) {
    const uint64_t t = varint(msg);
    const uint64_t field = t >> 3;
    if (field == 0 || field > (1u << 29)) fail(std::string("bad field number in ") + msg);
    return {static_cast<uint32_t>(field), static_cast<uint32_t>(t & 7)};
  }

  std::span<const std::byte> bytes(const char* what, size_t& abs_offset) {
    const uint64_t n = varint(what);
    if (n > b_.size() - pos_)
      fail(std::string(what) + ": length " + std::to_string(n) + " is past the end (" + std::to_string(b_.size() - pos_) +
           " bytes left)");
    abs_offset = base_ + pos_;
    auto s = b_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }

  float fixed32(const char* what) {
    if (b_.size() - pos_ < 4) fail(std::string("truncated fixed32 in ") + what);
    uint32_t u = 0;
    for (int i = 3; i >= 0; --i) u = (u << 8) | static_cast<uint8_t>(b_[pos_ + static_cast<size_t>(i)]);
    pos_ += 4;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }

  void expect(uint32_t wire, uint32_t want, const char* what) {
    if (wire != want) fail(std::string(what) + ": wire type " + std::to_string(wire) + ", expected " + std::to_string(want));
  }

  void skip(uint32_t wire, const char* msg) {
    size_t ignored = 0;
    switch (wire) {
      case kVarint: varint(msg); return;
      case kFixed64:
        if (b_.size() - pos_ < 8) fail(std::string("truncated fixed64 in ") + msg);
        pos_ += 8;
        return;
      case kLen: bytes(msg, ignored); return;
      case kFixed32: fixed32(msg); return;
      default: fail(std::string("unsupported wire type ") + std::to_string(wire) + " in " + msg);
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw ProtobufError(std::string(file_) + ": tokenizer.model: " + what + " at offset " + std::to_string(base_ + pos_));
  }

  size_t abs() const { return base_ + pos_; }

 private:
  std::span<const std::byte> b_;
  std::string_view file_;
  size_t base_;
  size_t pos_ = 0;
};

int32_t as_i32(uint64_t v) { return static_cast<int32_t>(static_cast<int64_t>(v)); }

SpmPiece parse_piece(PbReader r, const SpmLimits& limits) {
  SpmPiece p;
  while (!r.done()) {
    auto [field, wire] = r.tag("SentencePiece");
    size_t off = 0;
    if (field == 1) {
      r.expect(wire, kLen, "SentencePiece.piece");
      auto s = r.bytes("SentencePiece.piece", off);
      if (s.size() > limits.max_piece_bytes) r.fail("piece longer than " + std::to_string(limits.max_piece_bytes) + " bytes");
      p.piece.assign(reinterpret_cast<const char*>(s.data()), s.size());
    } else if (field == 2) {
      r.expect(wire, kFixed32, "SentencePiece.score");
      p.score = r.fixed32("SentencePiece.score");
    } else if (field == 3) {
      r.expect(wire, kVarint, "SentencePiece.type");
      p.type = as_i32(r.varint("SentencePiece.type"));
      if (p.type < 1 || p.type > 6) r.fail("SentencePiece.type " + std::to_string(p.type) + " is not 1..6");
    } else {
      r.skip(wire, "SentencePiece");
    }
  }
  return p;
}

void parse_trainer(PbReader r, SpmModel& m) {
  while (!r.done()) {
    auto [field, wire] = r.tag("TrainerSpec");
    int32_t* dst = field == 3 ? &m.model_type : field == 40 ? &m.unk_id : field == 41 ? &m.bos_id
                 : field == 42 ? &m.eos_id : field == 43 ? &m.pad_id : nullptr;
    if (dst) {
      r.expect(wire, kVarint, "TrainerSpec");
      *dst = as_i32(r.varint("TrainerSpec"));
    } else if (field == 35) {
      r.expect(wire, kVarint, "TrainerSpec.byte_fallback");
      m.byte_fallback = r.varint("TrainerSpec.byte_fallback") != 0;
    } else {
      r.skip(wire, "TrainerSpec");
    }
  }
}

void parse_normalizer(PbReader r, SpmModel& m) {
  while (!r.done()) {
    auto [field, wire] = r.tag("NormalizerSpec");
    bool* dst = field == 3 ? &m.add_dummy_prefix : field == 4 ? &m.remove_extra_whitespaces
              : field == 5 ? &m.escape_whitespaces : nullptr;
    if (dst) {
      r.expect(wire, kVarint, "NormalizerSpec");
      *dst = r.varint("NormalizerSpec") != 0;
    } else {
      r.skip(wire, "NormalizerSpec");
    }
  }
}

// Writer side.
void put_varint(std::vector<std::byte>& o, uint64_t v) {
  while (v >= 0x80) {
    o.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  o.push_back(static_cast<std::byte>(v));
}
void put_tag(std::vector<std::byte>& o, uint32_t field, uint32_t wire) { put_varint(o, (uint64_t{field} << 3) | wire); }
void put_len(std::vector<std::byte>& o, uint32_t field, const std::vector<std::byte>& body) {
  put_tag(o, field, kLen);
  put_varint(o, body.size());
  o.insert(o.end(), body.begin(), body.end());
}
void put_i32(std::vector<std::byte>& o, uint32_t field, int32_t v) {
  put_tag(o, field, kVarint);
  put_varint(o, static_cast<uint64_t>(static_cast<int64_t>(v)));
}

}  // namespace

SpmModel parse_spm_model(std::span<const std::byte> bytes, std::string_view name, const SpmLimits& limits) {
  SpmModel m;
  PbReader r(bytes, name, 0);
  while (!r.done()) {
    auto [field, wire] = r.tag("ModelProto");
    size_t off = 0;
    if (field == 1 || field == 2 || field == 3) {
      r.expect(wire, kLen, "ModelProto");
      auto body = r.bytes("ModelProto", off);
      PbReader sub(body, name, off);
      if (field == 1) {
        if (m.pieces.size() >= limits.max_pieces) r.fail("more than " + std::to_string(limits.max_pieces) + " pieces");
        m.pieces.push_back(parse_piece(sub, limits));
      } else if (field == 2) {
        parse_trainer(sub, m);
      } else {
        parse_normalizer(sub, m);
      }
    } else {
      r.skip(wire, "ModelProto");
    }
  }
  if (m.pieces.empty()) throw ProtobufError(std::string(name) + ": tokenizer.model has no pieces");
  return m;
}

std::vector<std::byte> write_spm_model(const SpmModel& m) {
  std::vector<std::byte> out;
  for (const SpmPiece& p : m.pieces) {
    std::vector<std::byte> b;
    put_tag(b, 1, kLen);
    put_varint(b, p.piece.size());
    for (char c : p.piece) b.push_back(static_cast<std::byte>(c));
    put_tag(b, 2, kFixed32);
    uint32_t u;
    std::memcpy(&u, &p.score, 4);
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::byte>((u >> (8 * i)) & 0xff));
    if (p.type != 1) put_i32(b, 3, p.type);
    put_len(out, 1, b);
  }
  std::vector<std::byte> t;
  put_i32(t, 3, m.model_type);
  put_tag(t, 35, kVarint);
  put_varint(t, m.byte_fallback ? 1 : 0);
  put_i32(t, 40, m.unk_id);
  put_i32(t, 41, m.bos_id);
  put_i32(t, 42, m.eos_id);
  put_i32(t, 43, m.pad_id);
  put_len(out, 2, t);
  std::vector<std::byte> n;
  put_tag(n, 1, kLen);
  put_varint(n, 8);
  for (char c : std::string("identity")) n.push_back(static_cast<std::byte>(c));
  put_tag(n, 3, kVarint);
  put_varint(n, m.add_dummy_prefix ? 1 : 0);
  put_tag(n, 4, kVarint);
  put_varint(n, m.remove_extra_whitespaces ? 1 : 0);
  put_tag(n, 5, kVarint);
  put_varint(n, m.escape_whitespaces ? 1 : 0);
  put_len(out, 3, n);
  return out;
}

}  // namespace zen::engine
