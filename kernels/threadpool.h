// A persistent pool of worker threads. run() executes a task on every thread (the caller
// is thread 0) and returns when all are done. Workers spin briefly, then sleep on a futex
// (std::atomic::wait), so back-to-back matmuls cost no thread creation and little wake-up.
#pragma once
#include <atomic>
#include <cstdint>
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

  // fn(ith, nth) runs once on each of the nth threads. Not reentrant.
  template <typename F>
  void run(F&& fn) {
    auto thunk = [](void* ctx, int ith, int nth) { (*static_cast<F*>(ctx))(ith, nth); };
    run_raw(thunk, &fn);
  }

  // Hands out work items [0, n) in chunks to whoever asks; call from inside run().
  class Counter {
   public:
    void reset() { next_.store(0, std::memory_order_relaxed); }
    int64_t take(int64_t chunk) { return next_.fetch_add(chunk, std::memory_order_relaxed); }

   private:
    alignas(64) std::atomic<int64_t> next_{0};
  };

 private:
  using Thunk = void (*)(void*, int, int);
  void run_raw(Thunk thunk, void* ctx);
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  Thunk thunk_ = nullptr;
  void* ctx_ = nullptr;
  bool stop_ = false;
};

}  // namespace zen::kernels
