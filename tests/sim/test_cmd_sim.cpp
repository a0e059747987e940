// `zen sim` through its CLI definition (node/cmd_sim.cpp): text and JSON output, exit status 2
// when the model does not fit, errors for bad files.
#include <gtest/gtest.h>

#include <fstream>

#include "node/cli.h"

namespace zen::cli {
void add_sim(CLI::App& app);
}

namespace {

std::string topology_path(const char* name) { return std::string(ZEN_SOURCE_DIR) + "/sim/topologies/" + name; }

// Runs `zen sim ARGS...`; returns the exit status (0, or CLI::RuntimeError's) and stdout.
int run_sim(std::vector<std::string> args, std::string& out) {
  CLI::App app("zen");
  zen::cli::add_sim(app);
  args.insert(args.begin(), "sim");
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
  testing::internal::CaptureStdout();
  int rc = 0;
  try {
    app.parse(args);
  } catch (const CLI::RuntimeError& e) {
    rc = e.get_exit_code();
  } catch (...) {
    out = testing::internal::GetCapturedStdout();
    throw;
  }
  out = testing::internal::GetCapturedStdout();
  return rc;
}

TEST(CmdSim, PrintsPlanPredictionAndAdvice) {
  std::string out;
  ASSERT_EQ(run_sim({topology_path("seed-70b-wifi.toml"), "--requests", "2", "--gen-tokens", "16"}, out), 0);
  EXPECT_NE(out.find("laptop-64"), std::string::npos) << out;
  EXPECT_NE(out.find("simulated, one request: TTFT"), std::string::npos) << out;
  EXPECT_NE(out.find("busiest:"), std::string::npos) << out;
  EXPECT_NE(out.find("advice"), std::string::npos) << out;
}

TEST(CmdSim, Json) {
  std::string out;
  ASSERT_EQ(run_sim({topology_path("two-phones-7b.toml"), "--json", "--prompt-tokens", "32"}, out), 0);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front(), '{');
  EXPECT_NE(out.find("\"fits\":true"), std::string::npos) << out;
  EXPECT_NE(out.find("\"prompt_tokens\":32"), std::string::npos) << out;
  EXPECT_NE(out.find("\"tokens_per_s\":"), std::string::npos) << out;
}

TEST(CmdSim, DoesNotFitExitsTwo) {
  const std::string path = testing::TempDir() + "/zen_sim_nofit.toml";
  std::ofstream(path) << "[model]\npreset = \"llama-3-70b\"\n[[device]]\nname = \"pi\"\npreset = \"rpi5-8gb\"\n";
  std::string out;
  EXPECT_EQ(run_sim({path}, out), 2);
  EXPECT_NE(out.find("DOES NOT FIT"), std::string::npos) << out;
}

TEST(CmdSim, BadFileThrows) {
  std::string out;
  EXPECT_THROW(run_sim({"/nonexistent.toml"}, out), std::exception);
}

}  // namespace
