// attend_f32 (kernels/attention.h): every ISA level gives the scalar reference's output (up
// to float summation order), for head shapes the SIMD path takes and ones it leaves to the
// reference, and with keys and values strided as in a GQA cache; query heads that share a KV
// head give, together, exactly what each gives alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/attention.h"
#include "kernels/ops.h"
#include "tests/kernels/kernel_test_util.h"

namespace zen::kernels {
namespace {

std::vector<float> attend_at(Isa isa, const std::vector<float>& q, const std::vector<float>& kv, size_t stride, int64_t hd,
                             int64_t hdv, int32_t len) {
  const Isa before = active_isa();
  set_active_isa(isa);
  std::vector<float> scores(static_cast<size_t>(len)), o(static_cast<size_t>(hdv), -1.f);
  attend_f32(q.data(), 1, kv.data(), stride, kv.data() + hd, stride, hd, hdv, len, 1.0f / std::sqrt(static_cast<float>(hd)),
             scores.data(), o.data());
  set_active_isa(before);
  return o;
}

TEST(Attention, EveryLevelMatchesTheReference) {
  struct Shape {
    int64_t hd, hdv;
    int32_t len;
  };
  for (const Shape sh : {Shape{64, 64, 1}, Shape{64, 64, 37}, Shape{128, 128, 300}, Shape{256, 256, 5}, Shape{256, 256, 21}, Shape{48, 80, 9},
                         Shape{20, 20, 7}, Shape{512, 512, 3}}) {
    const size_t stride = static_cast<size_t>(sh.hd + sh.hdv) * 3;  // rows of other heads in between
    const std::vector<float> q = testing::gaussian(static_cast<size_t>(sh.hd), 1, 2.f);
    const std::vector<float> kv = testing::gaussian(stride * static_cast<size_t>(sh.len), 2);
    const std::vector<float> want = attend_at(Isa::Scalar, q, kv, stride, sh.hd, sh.hdv, sh.len);
    // the reference itself: a convex combination of the values, so within their range
    for (int64_t i = 0; i < sh.hdv; ++i) {
      float lo = INFINITY, hi = -INFINITY;
      for (int32_t j = 0; j < sh.len; ++j) {
        lo = std::min(lo, kv[j * stride + sh.hd + i]);
        hi = std::max(hi, kv[j * stride + sh.hd + i]);
      }
      ASSERT_GE(want[i], lo - 1e-5f);
      ASSERT_LE(want[i], hi + 1e-5f);
    }
    for (Isa isa : kAllIsas) {
      if (!isa_supported(isa)) continue;
      const std::vector<float> got = attend_at(isa, q, kv, stride, sh.hd, sh.hdv, sh.len);
      for (int64_t i = 0; i < sh.hdv; ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5f) << isa_name(isa) << " hd " << sh.hd << " len " << sh.len << " i " << i;
    }
  }
}

TEST(Attention, HeadsOfAGroupEqualEachHeadAlone) {
  for (const int32_t len : {1, 37, 64, 65, 130, 300})
    for (const int heads : {1, 3, 8}) {
      const int64_t hd = 64;
      const size_t stride = static_cast<size_t>(2 * hd) * 4;
      const std::vector<float> q = testing::gaussian(static_cast<size_t>(heads * hd), static_cast<uint32_t>(len + heads), 2.f);
      const std::vector<float> kv = testing::gaussian(stride * static_cast<size_t>(len), 7);
      for (Isa isa : kAllIsas) {
        if (!isa_supported(isa)) continue;
        const Isa before = active_isa();
        set_active_isa(isa);
        std::vector<float> scores(static_cast<size_t>(heads * len)), together(static_cast<size_t>(heads * hd), -1.f);
        attend_f32(q.data(), heads, kv.data(), stride, kv.data() + hd, stride, hd, hd, len, 0.125f, scores.data(), together.data());
        for (int h = 0; h < heads; ++h) {
          std::vector<float> alone(static_cast<size_t>(hd), -2.f);
          attend_f32(q.data() + h * hd, 1, kv.data(), stride, kv.data() + hd, stride, hd, hd, len, 0.125f, scores.data(), alone.data());
          ASSERT_EQ(0, std::memcmp(alone.data(), together.data() + h * hd, sizeof(float) * static_cast<size_t>(hd)))
              << isa_name(isa) << " len " << len << " heads " << heads << " head " << h;
        }
        set_active_isa(before);
      }
    }
}

}  // namespace
}  // namespace zen::kernels
