#include "kernels/threadpool.h"

#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define ZEN_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define ZEN_CPU_RELAX() asm volatile("yield")
#else
#define ZEN_CPU_RELAX() ((void)0)
#endif

namespace zen::kernels {

namespace {
constexpr int kSpinIters = 1 << 14;  // a few tens of microseconds before sleeping
}

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  if (n_threads < 1 || n_threads > 1024) throw std::invalid_argument("thread count must be in 1..1024");
  threads_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lk(mu_);
    wake_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::work(int ith) {
  for (;;) {
    const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (b >= n_) return;
    thunk_(ctx_, b, b + grain_ < n_ ? b + grain_ : n_, ith);
  }
}

void ThreadPool::run_job(Thunk thunk, void* ctx, int64_t n, int64_t grain) {
  // state_ is closed here (every previous loop closed before returning): safe to write.
  thunk_ = thunk;
  ctx_ = ctx;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  const uint64_t gen = (state_.load(std::memory_order_relaxed) >> 32) + 1;
  state_.store(gen << 32, std::memory_order_release);  // open, nobody inside
  wake_.fetch_add(1);  // seq_cst, pairs with the sleepers_ count below
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lk(mu_); }
    cv_.notify_all();
  }
  work(0);
  // Close: no worker may join from now on; wait for those inside to finish their chunk.
  state_.fetch_or(kClosed, std::memory_order_acq_rel);
  int spins = 0;
  while ((state_.load(std::memory_order_acquire) & kActiveMask) != 0) {
    if (++spins < kSpinIters) ZEN_CPU_RELAX();
    else std::this_thread::yield();
  }
}

void ThreadPool::worker(int ith) {
  uint32_t seen = 0;  // the constructor's value: a loop opened before this thread ran is still seen
  for (;;) {
    int spins = 0;
    uint32_t w;
    while ((w = wake_.load(std::memory_order_acquire)) == seen && !stop_.load(std::memory_order_acquire)) {
      if (++spins < kSpinIters) {
        ZEN_CPU_RELAX();
        continue;
      }
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lk, [&] { return wake_.load() != seen || stop_.load(); });
      sleepers_.fetch_sub(1);
    }
    seen = w;
    if (stop_.load(std::memory_order_acquire)) return;
    // Join the open loop, if it is still open.
    uint64_t s = state_.load(std::memory_order_acquire);
    bool joined = false;
    while (!(s & kClosed)) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    work(ith);
    state_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace zen::kernels
