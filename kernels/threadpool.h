// A persistent pool of worker threads for data-parallel loops.
//
// parallel_for hands out [0, n) in chunks through a shared counter; the caller works too.
// A worker joins a loop only while it is open: when the caller has run out of chunks it
// closes the loop and waits only for workers that actually joined. So a worker that the OS
// has descheduled (a busy laptop, an oversubscribed VM) never stalls the caller: the caller
// simply does that share itself. Workers spin briefly between loops, then sleep on a futex
// (a condition variable, only touched when a worker really sleeps). No threads are created per call and nothing is allocated.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace zen::kernels {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, ith) for disjoint chunks covering [0, n), each at most `grain`
  // long; ith in [0, size()) identifies the executing thread (0 = the caller), so per-thread
  // scratch can be indexed by it. Runs on the caller alone when n <= grain or the pool has one
  // thread.
  // Not reentrant.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n <= grain) {
      fn(int64_t{0}, n, 0);
      return;
    }
    if (n_threads_ == 1) {
      for (int64_t b = 0; b < n; b += grain) fn(b, b + grain < n ? b + grain : n, 0);
      return;
    }
    auto thunk = [](void* ctx, int64_t b, int64_t e, int ith) { (*static_cast<F*>(ctx))(b, e, ith); };
    run_job(thunk, &fn, n, grain);
  }

 private:
  using Thunk = void (*)(void*, int64_t, int64_t, int);
  void run_job(Thunk thunk, void* ctx, int64_t n, int64_t grain);
  void work(int ith);
  void worker(int ith);

  static constexpr uint64_t kClosed = uint64_t{1} << 31;
  static constexpr uint64_t kActiveMask = kClosed - 1;

  int n_threads_;
  std::vector<std::thread> threads_;
  // The current loop. Written by the caller only while no worker can join (state_ closed).
  Thunk thunk_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  alignas(64) std::atomic<int64_t> next_{0};
  // bits 63..32: loop generation; bit 31: closed; bits 30..0: workers inside the loop.
  alignas(64) std::atomic<uint64_t> state_{kClosed};
  alignas(64) std::atomic<uint32_t> wake_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace zen::kernels
