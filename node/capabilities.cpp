#include "node/capabilities.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
#endif

#include "kernels/half.h"
#include "kernels/matmul.h"
#include "kernels/membench.h"
#include "kernels/ops.h"
#include "node/config.h"

namespace zen::node {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Reads "Key:   123 kB" from /proc/meminfo; 0 when absent.
uint64_t meminfo_bytes(const char* key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream ss(line.substr(prefix.size()));
    uint64_t v = 0;
    std::string unit;
    ss >> v >> unit;
    return unit == "kB" ? v * 1024 : v;
  }
  return 0;
}

// cgroup v2 headroom (memory.max - memory.current); 0 when there is no limit or no cgroup.
uint64_t cgroup_headroom() {
  std::ifstream max_in("/sys/fs/cgroup/memory.max"), cur_in("/sys/fs/cgroup/memory.current");
  std::string max_text;
  uint64_t cur = 0;
  if (!(max_in >> max_text) || max_text == "max" || !(cur_in >> cur)) return 0;
  uint64_t max = 0;
  try {
    max = std::stoull(max_text);
  } catch (const std::exception&) {
    return 0;
  }
  return max > cur ? max - cur : 1;
}

// Small, fast and deterministic: good enough to fill a benchmark matrix.
struct XorShift {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

// A Q4_K matrix with random nibbles and scales, and modest block scales (finite sums).
std::vector<kernels::BlockQ4_K> make_q4k(int64_t rows, int64_t cols) {
  const size_t blocks = static_cast<size_t>(rows) * static_cast<size_t>(cols / kernels::QK_K);
  std::vector<kernels::BlockQ4_K> m(blocks);
  XorShift rng;
  for (kernels::BlockQ4_K& b : m) {
    uint64_t r = rng.next();
    std::memcpy(b.scales, &r, 8);
    r = rng.next();
    std::memcpy(b.scales + 8, &r, 4);
    for (size_t i = 0; i < sizeof b.qs; i += 8) {
      r = rng.next();
      std::memcpy(b.qs + i, &r, 8);
    }
    b.d = kernels::fp32_to_fp16(1.0f / 1024);
    b.dmin = kernels::fp32_to_fp16(1.0f / 2048);
  }
  return m;
}

// Best seconds per call of fn, repeating until `budget` seconds have passed (at least twice).
template <class F>
double best_time(double budget, F&& fn) {
  fn();  // warm-up: caches, page tables, the pool's threads
  double best = 1e30;
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < 2 || (seconds_since(start) < budget && i < 1000); ++i) {
    const Clock::time_point t0 = Clock::now();
    fn();
    best = std::min(best, seconds_since(t0));
  }
  return std::max(best, 1e-9);
}

}  // namespace

uint64_t available_memory_bytes() {
  uint64_t avail = meminfo_bytes("MemAvailable");
  if (avail == 0) {
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) avail = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  }
  const uint64_t cg = cgroup_headroom();
  if (cg != 0 && (avail == 0 || cg < avail)) avail = cg;
  return avail;
}

std::string detect_cpu_features() {
  std::string out;
  auto add = [&out](const char* name) {
    if (!out.empty()) out += ' ';
    out += name;
  };
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
#define ZEN_FEATURE(x) \
  if (__builtin_cpu_supports(x)) add(x);
  ZEN_FEATURE("sse4.2")
  ZEN_FEATURE("avx")
  ZEN_FEATURE("avx2")
  ZEN_FEATURE("fma")
  ZEN_FEATURE("f16c")
  ZEN_FEATURE("bmi2")
  ZEN_FEATURE("avxvnni")
  ZEN_FEATURE("avx512f")
  ZEN_FEATURE("avx512bw")
  ZEN_FEATURE("avx512vl")
  ZEN_FEATURE("avx512dq")
  ZEN_FEATURE("avx512vnni")
  ZEN_FEATURE("avx512bf16")
  ZEN_FEATURE("avx512fp16")
#undef ZEN_FEATURE
#elif defined(__aarch64__)
  add("neon");  // Advanced SIMD is mandatory on AArch64
#if defined(__linux__)
  const unsigned long hw = ::getauxval(AT_HWCAP), hw2 = ::getauxval(AT_HWCAP2);
#ifdef HWCAP_ASIMDHP
  if (hw & HWCAP_ASIMDHP) add("fp16");
#endif
#ifdef HWCAP_ASIMDDP
  if (hw & HWCAP_ASIMDDP) add("dotprod");
#endif
#ifdef HWCAP_SVE
  if (hw & HWCAP_SVE) add("sve");
#endif
#ifdef HWCAP2_I8MM
  if (hw2 & HWCAP2_I8MM) add("i8mm");
#endif
#ifdef HWCAP2_BF16
  if (hw2 & HWCAP2_BF16) add("bf16");
#endif
  (void)hw;
  (void)hw2;
#endif
#endif
  return out.empty() ? "none" : out;
}

Capabilities measure_capabilities(int threads, uint64_t memory_budget, const MeasureOptions& o) {
  const Clock::time_point start = Clock::now();
  Capabilities c;
  const unsigned hw = std::thread::hardware_concurrency();
  c.threads = threads > 0 ? threads : static_cast<int>(hw == 0 ? 1 : hw);
  c.mem_available_bytes = available_memory_bytes();
  c.ram_bytes = memory_budget == 0 ? c.mem_available_bytes : std::min(memory_budget, c.mem_available_bytes);
  if (c.mem_available_bytes == 0) c.ram_bytes = memory_budget;  // the OS would not say: trust the budget
  c.cpu_features = detect_cpu_features();
  c.kernel_isa = kernels::isa_name(kernels::active_isa());

  kernels::ThreadPool pool(c.threads);
  kernels::MatmulScratch scratch;

  // Decode-style: one activation row against a Q4_K matrix (memory bound on real models).
  constexpr int64_t cols = 4096;
  const size_t row_bytes = kernels::row_bytes(kernels::DType::Q4_K, cols);
  const int64_t rows = std::max<int64_t>(64, static_cast<int64_t>(o.matvec_bytes / row_bytes));
  const std::vector<kernels::BlockQ4_K> w = make_q4k(rows, cols);
  const kernels::MatRef m{kernels::DType::Q4_K, w.data(), rows, cols, row_bytes};
  const int tokens = std::max(1, o.gemm_tokens);
  std::vector<float> x(static_cast<size_t>(cols) * static_cast<size_t>(tokens));
  XorShift rng;
  for (float& v : x) v = static_cast<float>(static_cast<int64_t>(rng.next() % 2001) - 1000) / 1000.0f;
  std::vector<float> y(static_cast<size_t>(rows) * static_cast<size_t>(tokens));
  const double mv = best_time(o.seconds_per_test, [&] { kernels::matmul(m, x.data(), 1, y.data(), pool, scratch); });
  c.kernel_gbps = static_cast<double>(row_bytes) * static_cast<double>(rows) / mv / 1e9;

  // Prompt-style: many activation rows against a slice small enough to stay in cache.
  kernels::MatRef g = m;
  g.rows = std::min(rows, std::max<int64_t>(1, o.gemm_rows));
  const double gm = best_time(o.seconds_per_test, [&] { kernels::matmul(g, x.data(), tokens, y.data(), pool, scratch); });
  c.flops = 2.0 * static_cast<double>(g.rows) * static_cast<double>(cols) * tokens / gm;

  c.read_bw_gbs = kernels::read_bandwidth_gbs(pool, std::max<size_t>(o.read_bytes, size_t{1} << 20), 3);
  c.measure_seconds = seconds_since(start);
  return c;
}

std::string describe(const Capabilities& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.1f GB/s kernel, %.1f GB/s read, %.1f GFLOP/s, ", c.kernel_gbps, c.read_bw_gbs,
                c.flops / 1e9);
  std::string s = buf;
  s += format_size(c.ram_bytes);
  s += " usable, ";
  s += std::to_string(c.threads);
  s += " threads, kernels ";
  s += c.kernel_isa;
  s += " (";
  s += c.cpu_features;
  s += ")";
  return s;
}

}  // namespace zen::node
