#include "transport/tensor.h"

#include <bit>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace zen::transport {

static_assert(std::endian::native == std::endian::little, "wire format is little-endian; big-endian hosts unsupported");

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
  }
  return "unknown";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f16: return 2;
    case DType::bf16: return 2;
  }
  throw std::invalid_argument("unknown dtype " + std::to_string(static_cast<int>(t)));
}

DType parse_dtype(std::string_view name) {
  if (name == "f32") return DType::f32;
  if (name == "f16") return DType::f16;
  if (name == "bf16") return DType::bf16;
  throw std::invalid_argument("unknown activation dtype '" + std::string(name) + "' (expected f32, f16 or bf16)");
}

size_t TensorBuf::element_count() const {
  if (shape.empty()) return 0;  // "no tensor"
  size_t n = 1;
  for (uint32_t d : shape) {
    if (d != 0 && n > std::numeric_limits<size_t>::max() / d) throw std::length_error("tensor shape overflows size_t");
    n *= d;
  }
  return n;
}

void TensorBuf::validate() const {
  size_t n = element_count();
  size_t es = dtype_size(dtype);
  if (n > std::numeric_limits<size_t>::max() / es) throw std::length_error("tensor byte size overflows size_t");
  if (bytes.size() != n * es) {
    throw std::invalid_argument("tensor has " + std::to_string(bytes.size()) + " bytes but shape and dtype " +
                                std::string(dtype_name(dtype)) + " need " + std::to_string(n * es));
  }
}

// IEEE 754 binary16, round to nearest even, subnormals, inf and NaN kept.
uint16_t f32_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t man = x & 0x7fffffu;
  if (exp == 0xff) {  // inf or NaN; keep NaN quiet and non-zero
    return static_cast<uint16_t>(sign | 0x7c00u | (man ? (0x200u | (man >> 13)) : 0u));
  }
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign;  // underflows to signed zero
    man |= 0x800000u;          // implicit leading one
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half_man = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_man & 1u))) half_man++;
    return static_cast<uint16_t>(sign | half_man);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (man >> 13);
  uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;  // may carry into exponent: correct (rounds to inf)
  return static_cast<uint16_t>(sign | h);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (man == 0) {
      x = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    x = sign | 0x7f800000u | (man << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (man << 13);
  }
  return std::bit_cast<float>(x);
}

uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

TensorBuf encode_activations(std::span<const float> values, std::vector<uint32_t> shape, DType wire) {
  TensorBuf t;
  t.dtype = wire;
  t.shape = std::move(shape);
  if (t.element_count() != values.size()) {
    throw std::invalid_argument("encode_activations: shape holds " + std::to_string(t.element_count()) +
                                " elements but " + std::to_string(values.size()) + " values were given");
  }
  t.bytes.resize(values.size() * dtype_size(wire));
  switch (wire) {
    case DType::f32:
      if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
      break;
    case DType::f16:
    case DType::bf16:
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t h = wire == DType::f16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
        std::memcpy(t.bytes.data() + 2 * i, &h, 2);
      }
      break;
  }
  return t;
}

void decode_activations(const TensorBuf& t, std::span<float> out) {
  t.validate();
  size_t n = t.element_count();
  if (out.size() != n) {
    throw std::invalid_argument("decode_activations: tensor has " + std::to_string(n) + " elements, output holds " +
                                std::to_string(out.size()));
  }
  switch (t.dtype) {
    case DType::f32:
      if (n) std::memcpy(out.data(), t.bytes.data(), n * 4);
      break;
    case DType::f16:
    case DType::bf16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.bytes.data() + 2 * i, 2);
        out[i] = t.dtype == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
      break;
  }
}

std::vector<float> decode_activations(const TensorBuf& t) {
  std::vector<float> out(t.element_count());
  decode_activations(t, out);
  return out;
}

}  // namespace zen::transport
