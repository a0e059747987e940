// `zen submit` against an HttpApi on an ephemeral port: the streamed text equals what the
// service gives directly; refusals and unreachable servers are clear errors.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "engine/chat_template.h"
#include "node/http_api.h"
#include "node/local_service.h"
#include "tests/node/test_local_service_model.h"

namespace zen::cli {
void add_submit(CLI::App& app);  // node/cmd_submit.cpp
}

namespace zen {
namespace {

// Runs `zen submit ARGS...` in-process; returns what it printed on stdout.
std::string submit(std::vector<std::string> args) {
  CLI::App app;
  cli::add_submit(app);
  args.insert(args.begin(), {"zen", "submit"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (...) {
    testing::internal::GetCapturedStdout();
    throw;
  }
  return testing::internal::GetCapturedStdout();
}

class SubmitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node::LocalServiceOptions so;
    so.n_ctx = 256;
    svc_ = std::make_unique<node::LocalService>(engine::Model::load(test::synth_model_path()), so);
    node::HttpApiOptions o;
    o.port = 0;
    o.api_keys = {"sk-test"};
    api_ = std::make_unique<node::HttpApi>(*svc_, o);
    api_->start();
    addr_ = "127.0.0.1:" + std::to_string(api_->port());
  }
  std::string direct(node::CompletionRequest r) {
    test::Collected c;
    svc_->submit(std::move(r), c.callback());
    EXPECT_TRUE(c.wait());
    return c.text;
  }
  std::unique_ptr<node::LocalService> svc_;
  std::unique_ptr<node::HttpApi> api_;
  std::string addr_;
};

TEST_F(SubmitTest, StreamsTheAnswer) {
  node::CompletionRequest r;
  r.prompt = svc_->tokenizer().encode("Once upon a time", true, false);
  r.max_tokens = 20;
  r.sampling.temperature = 0;
  const std::string want = direct(r);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(submit({"--coordinator", addr_, "-p", "Once upon a time", "-n", "20", "--temp", "0", "--api-key", "sk-test"}),
            want + "\n");
  EXPECT_EQ(submit({"--coordinator", "http://" + addr_ + "/", "-p", "Once upon a time", "-n", "20", "--temp", "0",
                    "--api-key", "sk-test"}),
            want + "\n");

  r.prompt = svc_->tokenizer().encode(engine::render_chat(svc_->chat_template(), {{"user", "Hi there"}}, true), true, true);
  r.stop_tokens = engine::chat_template_stop_tokens(svc_->chat_template(), svc_->tokenizer());
  r.stop = engine::chat_template_stop_strings(svc_->chat_template());
  EXPECT_EQ(submit({"--coordinator", addr_, "--chat", "-p", "Hi there", "-n", "20", "--temp", "0", "--api-key", "sk-test"}),
            direct(r) + "\n");
}

TEST_F(SubmitTest, ErrorsAreClear) {
  try {
    submit({"--coordinator", addr_, "-p", "Hello", "-n", "4"});
    FAIL() << "no API key, yet accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 401"), std::string::npos) << e.what();
  }
  try {
    submit({"--coordinator", addr_, "-p", "Hello", "-n", "100000", "--api-key", "sk-test"});
    FAIL() << "max_tokens beyond the context, yet accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 400"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("max_tokens"), std::string::npos) << e.what();
  }
  const int port = api_->port();
  api_->stop();
  try {
    submit({"--coordinator", "127.0.0.1:" + std::to_string(port), "-p", "Hello"});
    FAIL() << "nobody listens, yet it answered";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no answer from 127.0.0.1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(submit({"--coordinator", "127.0.0.1:99999", "-p", "x"}), std::invalid_argument);
  EXPECT_THROW(submit({"--coordinator", "https://example.org", "-p", "x"}), std::invalid_argument);
}

}  // namespace
}  // namespace zen
