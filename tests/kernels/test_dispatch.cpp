// Run-time ISA dispatch: the level chain, the tables each level builds, and (when the test is
// run with ZEN_EXPECT_ISA, as scripts/test-arm does under several emulated CPUs) that detection
// plus the ZEN_ISA override picked the level the CPU model should give.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/ops.h"

namespace zen::kernels {
namespace {

TEST(Dispatch, ActiveLevelIsTheExpectedOne) {
  const char* want = std::getenv("ZEN_EXPECT_ISA");
  if (!want) GTEST_SKIP() << "ZEN_EXPECT_ISA not set (scripts/test-arm sets it per emulated CPU)";
  EXPECT_STREQ(isa_name(active_isa()), want) << "detected " << isa_name(detected_isa());
}

TEST(Dispatch, LevelsFormAChain) {
  // A higher level of a family implies the lower ones: its table overlays theirs.
  if (isa_supported(Isa::Avx512)) {
    EXPECT_TRUE(isa_supported(Isa::Avx2));
  }
  if (isa_supported(Isa::NeonI8mm)) {
    EXPECT_TRUE(isa_supported(Isa::NeonDotprod));
  }
  if (isa_supported(Isa::NeonDotprod)) {
    EXPECT_TRUE(isa_supported(Isa::Neon));
  }
  EXPECT_TRUE(isa_supported(Isa::Scalar));
  EXPECT_TRUE(isa_supported(detected_isa()));
  EXPECT_TRUE(isa_supported(active_isa()));
}

TEST(Dispatch, EverySupportedLevelCoversTheScalarTable) {
  const OpsTable& scalar = ops_table(Isa::Scalar);
  for (Isa isa : kAllIsas) {
    if (!isa_supported(isa)) {
      EXPECT_THROW(ops_table(isa), std::runtime_error) << isa_name(isa);
      continue;
    }
    const OpsTable& t = ops_table(isa);
    for (size_t i = 0; i < scalar.size(); ++i) {
      SCOPED_TRACE(std::string(isa_name(isa)) + " type id " + std::to_string(i));
      EXPECT_EQ(t[i].dequantize != nullptr, scalar[i].dequantize != nullptr);
      EXPECT_EQ(t[i].quantize != nullptr, scalar[i].quantize != nullptr);
      EXPECT_EQ(t[i].vec_dot != nullptr, scalar[i].vec_dot != nullptr);
    }
  }
}

TEST(Dispatch, SetActiveIsaRefusesAnUnsupportedLevel) {
  const Isa before = active_isa();
  for (Isa isa : kAllIsas)
    if (!isa_supported(isa)) {
      EXPECT_THROW(set_active_isa(isa), std::runtime_error) << isa_name(isa);
    }
  EXPECT_EQ(active_isa(), before);
}

}  // namespace
}  // namespace zen::kernels
