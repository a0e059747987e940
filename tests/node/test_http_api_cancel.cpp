// The HTTP API against a scripted service that generates forever (a token every few ms until
// told to stop): a client leaving mid-stream cancels its request, timeouts cancel too, an
// overloaded service is a 503, and stop() ends open streams.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "node/http_api.h"
#include "tests/node/test_local_service_model.h"

namespace zen {
namespace {

using nlohmann::json;

class EndlessService : public node::InferenceService {
 public:
  EndlessService() : model_(engine::Model::load(test::synth_model_path())), tok_(engine::Tokenizer::from_gguf(model_->file().gguf())) {}
  ~EndlessService() override {
    stop_all = true;
    for (auto& t : threads_) t.join();
  }
  const engine::Tokenizer& tokenizer() const override { return *tok_; }
  std::string model_name() const override { return "endless"; }
  std::string chat_template() const override { return "simple"; }
  int n_ctx() const override { return 512; }
  nlohmann::json cluster_info() const override { return {{"nodes", json::array()}}; }

  uint64_t submit(node::CompletionRequest, std::function<bool(const node::TokenEvent&)> on_event) override {
    if (overloaded) throw node::OverloadedError("overloaded: every slot is busy");
    const uint64_t id = ++next_id_;
    std::lock_guard<std::mutex> lk(mu_);
    threads_.emplace_back([this, id, on_event] {
      for (int i = 0;; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
        if (stop_all || cancelled_id == id) {
          node::TokenEvent ev;
          ev.done = true;
          ev.finish_reason = "cancelled";
          on_event(ev);
          ++ended_by_cancel;
          return;
        }
        node::TokenEvent ev;
        ev.token = 100 + i % 50;
        ev.text = "w" + std::to_string(i) + " ";
        ++tokens_sent;
        if (!on_event(ev)) {
          ++ended_by_callback;
          return;
        }
      }
    });
    return id;
  }
  void cancel(uint64_t id) override {
    cancelled_id = id;
    ++cancel_calls;
  }
  bool ended() const { return ended_by_callback + ended_by_cancel > 0; }

  std::atomic<bool> overloaded{false}, stop_all{false};
  std::atomic<uint64_t> cancelled_id{0};
  std::atomic<int> ended_by_callback{0}, ended_by_cancel{0}, cancel_calls{0}, tokens_sent{0};

 private:
  std::shared_ptr<const engine::Model> model_;
  std::unique_ptr<engine::Tokenizer> tok_;
  std::atomic<uint64_t> next_id_{0};
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

bool eventually(const std::function<bool()>& cond, int ms = 5000) {
  for (int i = 0; i < ms; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

std::unique_ptr<node::HttpApi> serve(EndlessService& svc, double timeout_s = 600) {
  node::HttpApiOptions o;
  o.port = 0;
  o.request_timeout_s = timeout_s;
  auto api = std::make_unique<node::HttpApi>(svc, o);
  api->start();
  return api;
}

TEST(HttpApiCancel, ClientLeavingMidStreamCancelsItsRequest) {
  EndlessService svc;
  auto api = serve(svc);
  for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
    svc.ended_by_callback = 0;
    svc.ended_by_cancel = 0;
    httplib::Client c("127.0.0.1", api->port());
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = std::string(path).find("chat") != std::string::npos
                   ? R"({"messages": [{"role": "user", "content": "hi"}], "stream": true})"
                   : R"({"prompt": "hi", "stream": true})";
    req.set_header("Content-Type", "application/json");
    std::string got;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      got.append(data, n);
      return got.find("w5 ") == std::string::npos;  // leave after a few tokens
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    EXPECT_FALSE(c.send(req, res, err));
    EXPECT_EQ(err, httplib::Error::Canceled);
    c.stop();
    ASSERT_TRUE(eventually([&] { return svc.ended(); })) << path << ": the request kept running after the client left";
    const int sent = svc.tokens_sent;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(svc.tokens_sent, sent) << "tokens still generated";
  }
  EXPECT_EQ(httplib::Client("127.0.0.1", api->port()).Get("/health")->status, 200);
}

TEST(HttpApiCancel, TimeoutCancels) {
  EndlessService svc;
  auto api = serve(svc, /*timeout_s=*/0.3);
  httplib::Client c("127.0.0.1", api->port());
  auto res = c.Post("/v1/completions", R"({"prompt": "hi"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 504);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "timeout");
  ASSERT_TRUE(eventually([&] { return svc.ended(); }));

  svc.ended_by_callback = 0;
  svc.ended_by_cancel = 0;
  res = c.Post("/v1/completions", R"({"prompt": "hi", "stream": true})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("\"code\":\"timeout\""), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("data: [DONE]\n\n"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return svc.ended(); }));
}

TEST(HttpApiCancel, OverloadedIs503) {
  EndlessService svc;
  svc.overloaded = true;
  auto api = serve(svc);
  httplib::Client c("127.0.0.1", api->port());
  auto res = c.Post("/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  const json j = json::parse(res->body);
  EXPECT_EQ(j["error"]["code"], "overloaded");
  EXPECT_EQ(j["error"]["type"], "server_error");
}

TEST(HttpApiCancel, StopEndsOpenStreams) {
  EndlessService svc;
  auto api = serve(svc);
  std::string body;
  std::thread client([&] {
    httplib::Client c("127.0.0.1", api->port());
    c.set_read_timeout(10, 0);
    auto res = c.Post("/v1/completions", R"({"prompt": "hi", "stream": true})", "application/json");
    if (res) body = res->body;
  });
  ASSERT_TRUE(eventually([&] { return svc.tokens_sent > 5; }));
  const auto t0 = std::chrono::steady_clock::now();
  api->stop();
  client.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_TRUE(eventually([&] { return svc.ended(); }));
  EXPECT_NE(body.find("w1 "), std::string::npos);
}

TEST(HttpApiCancel, PortInUseIsAClearError) {
  EndlessService svc;
  auto first = serve(svc);
  node::HttpApiOptions o;
  o.port = first->port();
  node::HttpApi second(svc, o);
  try {
    second.start();
    FAIL() << "two servers on one port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(o.port)), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zen
