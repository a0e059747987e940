// ThreadPool: every index exactly once, inline small loops, quick create/destroy (no lost
// wake-up), and progress with more threads than cores.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "kernels/threadpool.h"

namespace zen::kernels {
namespace {

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 64, 1000, 4097}) {
      for (int64_t grain : {1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int> bad_ith{0};
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e, int ith) {
          if (ith < 0 || ith >= threads || e - b > grain || b >= e) bad_ith++;
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (auto& h : hits) ASSERT_EQ(h.load(), 1) << threads << " threads, n " << n << ", grain " << grain;
        EXPECT_EQ(bad_ith.load(), 0);
      }
    }
  }
}

TEST(ThreadPool, SmallLoopRunsOnCaller) {
  ThreadPool pool(4);
  int calls = 0, ith_seen = -1;
  pool.parallel_for(10, 10, [&](int64_t b, int64_t e, int ith) {
    ++calls;
    ith_seen = ith;
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ith_seen, 0);
}

TEST(ThreadPool, CreateAndDestroyQuickly) {
  for (int i = 0; i < 200; ++i) {
    ThreadPool pool(3);
    if (i % 2) pool.parallel_for(100, 1, [](int64_t, int64_t, int) {});
  }
  SUCCEED();
}

TEST(ThreadPool, OversubscribedPoolFinishes) {
  ThreadPool pool(16);  // far more threads than this machine's cores
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 2000; ++rep)
    pool.parallel_for(64, 1, [&](int64_t b, int64_t e, int) { sum += e - b; });
  EXPECT_EQ(sum.load(), 2000 * 64);
}

TEST(ThreadPool, RejectsBadThreadCount) {
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
}

}  // namespace
}  // namespace zen::kernels
