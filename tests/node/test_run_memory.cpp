// `zen run` maps the weights and never copies them: its peak resident memory is at most the
// model file, the KV cache and 100 MiB of working buffers (issue #7), on a model large enough
// (about 95 MiB) that one copy of the weights would break the bound.
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>

#include "tests/node/cluster_harness.h"

namespace zen::test {
namespace {

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(RunMemory, PeakResidentIsFilePlusKvPlus100MiB) {
#ifdef ZEN_SANITIZER_BUILD
  GTEST_SKIP() << "a sanitizer build's resident memory includes its shadow memory and quarantine";
#endif
  const fs::path dir = temp_dir("run-memory");
  const std::string model = synth_model(dir, /*n_layer=*/8, /*n_embd=*/1024, /*n_ff=*/2816, engine::Mix::Q8_0);
  const std::string out = run_capture(std::string(ZEN_BINARY_DIR) + "/bin/zen run -m " + model +
                                      " -p 'the memory of a run' -n 24 -t 2 --temp 0 2>&1 >/dev/null");
  std::smatch m;
  const std::regex re(R"(first token ([0-9.]+) ms after start \| peak resident ([0-9.]+) MiB \(model file ([0-9.]+) MiB, KV cache ([0-9.]+) MiB\))");
  ASSERT_TRUE(std::regex_search(out, m, re)) << out;
  const double first_ms = std::stod(m[1]), peak = std::stod(m[2]), file = std::stod(m[3]), kv = std::stod(m[4]);
  RecordProperty("peak_resident_mib", std::to_string(peak));
  EXPECT_GT(first_ms, 0.0);
  EXPECT_GT(file, 80.0) << "the model is too small for the bound to mean anything";
  EXPECT_GT(kv, 0.0);
  // Every weight was read for the tokens generated, so the mapped file is resident...
  EXPECT_GT(peak, 0.8 * file) << out;
  // ...and nothing else big is.
  EXPECT_LE(peak, file + kv + 100.0) << out;
  remove_later(dir);
}

}  // namespace
}  // namespace zen::test
