// Typed byte buffers for activations and logits on the wire, and the small
// float <-> f16/bf16 converters transport needs (it may not include kernels/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace zen::transport {

enum class DType : uint8_t { f32 = 0, f16 = 1, bf16 = 2 };

std::string_view dtype_name(DType t);
size_t dtype_size(DType t);  // bytes per element
// Parses "f32" / "f16" / "bf16"; throws std::invalid_argument on anything else.
DType parse_dtype(std::string_view name);

// A row-major tensor: shape[0] is outermost. Invariant checked by validate():
// bytes.size() == product(shape) * dtype_size(dtype). An empty shape means "no
// tensor" (zero elements, zero bytes).
struct TensorBuf {
  DType dtype = DType::f32;
  std::vector<uint32_t> shape;   // e.g. [n_rows, n_embd]
  std::vector<std::byte> bytes;  // little-endian elements

  size_t element_count() const;  // throws std::length_error on overflow
  // Throws std::invalid_argument with a clear message when bytes do not match shape.
  void validate() const;
  bool operator==(const TensorBuf&) const = default;
};

// f32 -> wire dtype. f32 is a bit copy (lossless); f16 and bf16 round to nearest even.
TensorBuf encode_activations(std::span<const float> values, std::vector<uint32_t> shape, DType wire);
// Wire -> f32 into out (out.size() must equal element_count()). Throws on mismatch.
void decode_activations(const TensorBuf& t, std::span<float> out);
std::vector<float> decode_activations(const TensorBuf& t);

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);

}  // namespace zen::transport
