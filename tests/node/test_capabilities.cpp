// Capabilities: the measured speeds are positive and plausible, usable memory respects the
// budget, CPU features agree with the kernels' own ISA detection, and the whole start-up
// measurement is short (stated bound: 3 s on a loaded 2-core machine; ~0.2 s typical).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "kernels/ops.h"
#include "node/capabilities.h"

namespace zen::node {
namespace {

uint64_t mem_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t v = 0;
  while (in >> key >> v >> unit)
    if (key == "MemTotal:") return v * 1024;
  return 0;
}

bool has_word(const std::string& list, const std::string& word) {
  std::istringstream ss(list);
  std::string w;
  while (ss >> w)
    if (w == word) return true;
  return false;
}

TEST(Capabilities, MeasuredFieldsAreSaneAndQuick) {
  const Capabilities c = measure_capabilities(2, 0);
  std::printf("capabilities: %s (%.0f ms)\n", describe(c).c_str(), c.measure_seconds * 1e3);
  EXPECT_EQ(c.threads, 2);
  EXPECT_GT(c.ram_bytes, uint64_t{16} << 20);
  EXPECT_EQ(c.ram_bytes, c.mem_available_bytes);  // no budget: everything available
  if (const uint64_t total = mem_total_bytes()) {
    EXPECT_LE(c.ram_bytes, total);
  }
  // Plausible ranges for any CPU from a phone to a server (bytes and FLOPs per second).
  EXPECT_GT(c.kernel_gbps, 0.05);
  EXPECT_LT(c.kernel_gbps, 5000.0);
  EXPECT_GT(c.read_bw_gbs, 0.1);
  EXPECT_LT(c.read_bw_gbs, 5000.0);
  EXPECT_GT(c.flops, 1e7);
  EXPECT_LT(c.flops, 1e14);
  EXPECT_FALSE(c.cpu_features.empty());
  EXPECT_EQ(c.kernel_isa, kernels::isa_name(kernels::active_isa()));
  EXPECT_LT(c.measure_seconds, 3.0) << "the start-up benchmark should take about 0.2 s";
}

TEST(Capabilities, BudgetCapsUsableMemory) {
  MeasureOptions small;
  small.matvec_bytes = size_t{1} << 20;
  small.read_bytes = size_t{4} << 20;
  small.seconds_per_test = 0.005;
  const Capabilities capped = measure_capabilities(1, uint64_t{64} << 20, small);
  ASSERT_GT(capped.mem_available_bytes, uint64_t{64} << 20) << "test machine has under 64 MiB available";
  EXPECT_EQ(capped.ram_bytes, uint64_t{64} << 20);
  EXPECT_EQ(capped.threads, 1);
  // A budget above what is available is capped by what is available.
  const Capabilities over = measure_capabilities(1, uint64_t{1} << 60, small);
  EXPECT_EQ(over.ram_bytes, over.mem_available_bytes);
  EXPECT_LT(over.ram_bytes, uint64_t{1} << 60);
}

TEST(Capabilities, CpuFeaturesMatchTheKernelsIsaDetection) {
  const std::string f = detect_cpu_features();
  switch (kernels::detected_isa()) {
    case kernels::Isa::Avx512:
      EXPECT_TRUE(has_word(f, "avx512f")) << f;
      EXPECT_TRUE(has_word(f, "avx512vnni")) << f;
      [[fallthrough]];
    case kernels::Isa::Avx2:
      EXPECT_TRUE(has_word(f, "avx2")) << f;
      EXPECT_TRUE(has_word(f, "fma")) << f;
      EXPECT_TRUE(has_word(f, "f16c")) << f;
      break;
    case kernels::Isa::NeonI8mm:
      EXPECT_TRUE(has_word(f, "i8mm")) << f;
      [[fallthrough]];
    case kernels::Isa::NeonDotprod:
      EXPECT_TRUE(has_word(f, "dotprod")) << f;
      [[fallthrough]];
    case kernels::Isa::Neon:
      EXPECT_TRUE(has_word(f, "neon")) << f;
      break;
    case kernels::Isa::Scalar:
      EXPECT_FALSE(has_word(f, "avx2") && has_word(f, "fma") && has_word(f, "f16c")) << f;
      break;
  }
}

TEST(Capabilities, AvailableMemoryIsBelowTotal) {
  const uint64_t avail = available_memory_bytes();
  EXPECT_GT(avail, 0u);
  if (const uint64_t total = mem_total_bytes()) {
    EXPECT_LE(avail, total);
  }
}

}  // namespace
}  // namespace zen::node
