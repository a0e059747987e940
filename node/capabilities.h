// What a node can offer the planner: memory it may use, threads, CPU features, and speeds
// measured at start-up with the real kernels (a short micro-benchmark, ~150 ms).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace zen::node {

struct Capabilities {
  uint64_t ram_bytes = 0;          // usable: min(budget, MemAvailable, cgroup headroom)
  uint64_t mem_available_bytes = 0;  // what the OS says is available now
  int threads = 0;                 // compute threads the measurements used
  std::string cpu_features;        // "avx2 fma f16c avx512f ..." (x86 CPUID) or "neon dotprod ..." (ARM)
  std::string kernel_isa;          // kernel table in use: scalar, avx2, avx512, neon
  double kernel_gbps = 0;          // Q4_K matrix-vector product: weight bytes streamed per second / 1e9
  double read_bw_gbs = 0;          // plain streaming read bandwidth, GB/s
  double flops = 0;                // Q4_K prompt-style product (many activation rows): FLOP/s
  double measure_seconds = 0;      // wall time of the whole measurement
};

struct MeasureOptions {
  size_t matvec_bytes = size_t{32} << 20;  // Q4_K weight matrix for the matrix-vector test
  size_t read_bytes = size_t{64} << 20;    // buffer for the read-bandwidth test
  int gemm_tokens = 32;                    // activation rows in the prompt-style product
  int64_t gemm_rows = 1024;                // weight rows used by the prompt-style product
  double seconds_per_test = 0.04;          // each timed test repeats until this much time has passed
};

// threads <= 0: every hardware thread. memory_budget 0: no budget (what is available).
Capabilities measure_capabilities(int threads, uint64_t memory_budget, const MeasureOptions& opts = {});

// MemAvailable from /proc/meminfo (physical pages free or reclaimable), capped by the
// cgroup v2 limit minus usage when one applies; sysconf free pages where /proc is missing.
uint64_t available_memory_bytes();
// Space-separated features the kernels care about, detected at run time.
std::string detect_cpu_features();
// "12.3 GB/s kernel, 20.1 GB/s read, 85 GFLOP/s, 6 GiB, 4 threads, avx2 (avx2 fma f16c)"
std::string describe(const Capabilities& c);

}  // namespace zen::node
