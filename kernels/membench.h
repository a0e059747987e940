// Streaming read bandwidth of this machine (the physical limit for decoding).
#pragma once
#include <cstddef>

#include "kernels/threadpool.h"

namespace zen::kernels {

// Reads a buffer of `bytes` (split over the pool's threads) `reps` times; returns the best GB/s.
double read_bandwidth_gbs(ThreadPool& pool, size_t bytes = size_t{512} << 20, int reps = 5);

}  // namespace zen::kernels
