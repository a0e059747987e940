#include "kernels/types.h"

#include <array>
#include <cctype>
#include <stdexcept>

namespace zen::kernels {
namespace {

constexpr std::array<TypeInfo, 18> kTypes{{
    {DType::F32, "f32", 1, 4, DType::F32},
    {DType::F16, "f16", 1, 2, DType::F16},
    {DType::BF16, "bf16", 1, 2, DType::BF16},
    {DType::Q4_0, "q4_0", QK4_0, sizeof(BlockQ4_0), DType::Q8_0},
    {DType::Q4_1, "q4_1", QK4_1, sizeof(BlockQ4_1), DType::Q8_1},
    {DType::Q5_0, "q5_0", QK5_0, sizeof(BlockQ5_0), DType::Q8_0},
    {DType::Q5_1, "q5_1", QK5_1, sizeof(BlockQ5_1), DType::Q8_1},
    {DType::Q8_0, "q8_0", QK8_0, sizeof(BlockQ8_0), DType::Q8_0},
    {DType::Q8_1, "q8_1", QK8_1, sizeof(BlockQ8_1), DType::Q8_1},
    {DType::Q2_K, "q2_K", QK_K, sizeof(BlockQ2_K), DType::Q8_K},
    {DType::Q3_K, "q3_K", QK_K, sizeof(BlockQ3_K), DType::Q8_K},
    {DType::Q4_K, "q4_K", QK_K, sizeof(BlockQ4_K), DType::Q8_K},
    {DType::Q5_K, "q5_K", QK_K, sizeof(BlockQ5_K), DType::Q8_K},
    {DType::Q6_K, "q6_K", QK_K, sizeof(BlockQ6_K), DType::Q8_K},
    {DType::Q8_K, "q8_K", QK_K, sizeof(BlockQ8_K), DType::Q8_K},
    {DType::Q4_K_LANES, "q4_K_lanes", QK_K, sizeof(BlockQ4_K), DType::Q8_K, true},
    {DType::Q4_K_X4, "q4_K_x4", QK_K, sizeof(BlockQ4_K), DType::Q8_K, true},
    {DType::Q6_K_LANES, "q6_K_lanes", QK_K, sizeof(BlockQ6_K), DType::Q8_K, true},
}};

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

const TypeInfo* find_type(uint32_t id) {
  for (const TypeInfo& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeInfo& type_info(DType t) {
  const TypeInfo* ti = find_type(static_cast<uint32_t>(t));
  if (!ti) throw std::invalid_argument("unknown tensor type id " + std::to_string(static_cast<uint32_t>(t)));
  return *ti;
}

std::optional<DType> type_from_name(std::string_view name) {
  for (const TypeInfo& t : kTypes)
    if (!t.internal && iequal(t.name, name)) return t.type;
  return std::nullopt;
}

}  // namespace zen::kernels
