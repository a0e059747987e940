// Human-readable plans.
#include <cstdio>
#include <string>

#include "partition/partition.h"

namespace zen::partition {

namespace {

template <class... Args>
std::string printf_string(const char* fmt, Args... args) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

std::string format_seconds(double s) {
  if (s < 1e-3) return printf_string("%.1f us", s * 1e6);
  if (s < 1) return printf_string("%.2f ms", s * 1e3);
  return printf_string("%.2f s", s);
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) return std::to_string(bytes) + " B";
  if (bytes < (1ull << 20)) return printf_string("%.1f KiB", b / 1024);
  if (bytes < (1ull << 30)) return printf_string("%.1f MiB", b / (1 << 20));
  return printf_string("%.2f GiB", b / (1 << 30));
}

std::string describe(const Plan& plan, const Cluster& cluster) {
  std::string out;
  if (!plan.fits) out += "DOES NOT FIT: " + plan.why_not + "\n" + (plan.stages.empty() ? "" : "closest try:\n");
  if (plan.stages.empty()) return out;
  out += printf_string("%-5s  %-20s  %-18s  %-22s  %-10s  %s\n", "stage", "device", "layers", "memory used/total",
                       "decode", "prefill/token");
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const Stage& s = plan.stages[i];
    const bool known = s.device >= 0 && static_cast<size_t>(s.device) < cluster.devices.size();
    const std::string name = known ? cluster.devices[static_cast<size_t>(s.device)].name : "?";
    const std::string total = known ? format_bytes(cluster.devices[static_cast<size_t>(s.device)].mem_bytes) : "?";
    std::string layers = printf_string("[%d, %d)", s.first_layer, s.end_layer);
    if (s.embed) layers += " embed";
    if (s.head) layers += " head";
    out += printf_string("%-5zu  %-20s  %-18s  %-22s  %-10s  %s\n", i, name.c_str(), layers.c_str(),
                         (format_bytes(s.mem_bytes) + " / " + total).c_str(), format_seconds(s.decode_s).c_str(),
                         format_seconds(s.prefill_s_per_token).c_str());
  }
  const Prediction& p = plan.prediction;
  out += printf_string(
      "one stream: %.2f tokens/s (%s per token); time to first token %s for %d prompt tokens (%.1f tokens/s)\n",
      p.tokens_per_s, format_seconds(p.token_s).c_str(), format_seconds(p.ttft_s).c_str(), p.prompt_tokens,
      p.prefill_tokens_per_s);
  out += printf_string("%d streams: %.2f tokens/s in total (batches of %d)\n", p.n_streams, p.aggregate_tokens_per_s,
                       p.stream_batch);
  out += "bottleneck: " + p.bottleneck + " (stage " + std::to_string(p.bottleneck_stage) + ")\n";
  return out;
}

}  // namespace zen::partition
