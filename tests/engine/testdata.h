// Helpers for tests that read ../shared/testdata (skipped with a clear message when absent).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace zen::test {

inline std::filesystem::path testdata_dir() {
  if (const char* env = std::getenv("ZEN_TESTDATA")) return env;
  return ZEN_TESTDATA_DIR;
}

inline bool have_testdata() { return std::filesystem::exists(testdata_dir() / "models" / "stories260K.gguf"); }

#define ZEN_REQUIRE_TESTDATA()                                                                     \
  do {                                                                                             \
    if (!::zen::test::have_testdata())                                                             \
      GTEST_SKIP() << "reference data not found at " << ::zen::test::testdata_dir()                \
                   << " (set ZEN_TESTDATA or place ../shared/testdata beside the checkout)";       \
  } while (0)

inline std::vector<float> read_f32(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  in.seekg(0, std::ios::end);
  const size_t n = static_cast<size_t>(in.tellg()) / sizeof(float);
  in.seekg(0);
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  return v;
}

// Extracts the integer array after "key": [ ... ] from a small JSON file (test data only).
inline std::vector<int32_t> json_int_array(const std::filesystem::path& p, const std::string& key) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t k = s.find("\"" + key + "\"");
  if (k == std::string::npos) throw std::runtime_error(key + " not in " + p.string());
  const size_t a = s.find('[', k), b = s.find(']', a);
  std::vector<int32_t> out;
  std::string num;
  for (size_t i = a + 1; i <= b; ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '-') num += s[i];
    else if (!num.empty()) { out.push_back(std::stoi(num)); num.clear(); }
  }
  return out;
}

struct Diff {
  double max_abs = 0, rms = 0;
};
inline Diff diff(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  double ss = 0;
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const double e = std::abs(static_cast<double>(a[i]) - b[i]);
    d.max_abs = std::max(d.max_abs, e);
    ss += e * e;
  }
  d.rms = n ? std::sqrt(ss / static_cast<double>(n)) : 0;
  return d;
}

}  // namespace zen::test
