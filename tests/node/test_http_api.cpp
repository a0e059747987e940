// The OpenAI-compatible HTTP API on an ephemeral port, driven with httplib::Client: answers
// (whole and streamed) equal what the service gives directly, every bad request is a JSON 4xx
// and the server keeps serving, API keys, the body limit, and a client that leaves mid-stream
// cancels its request.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/chat_template.h"
#include "node/http_api.h"
#include "node/local_service.h"
#include "tests/node/http_test_fixture.h"
#include "tests/node/test_local_service_model.h"

namespace zen {
namespace {

using nlohmann::json;
using node::HttpApi;
using node::HttpApiOptions;

// The JSON payloads of a server-sent event stream, in order ("[DONE]" included as a string).
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    const std::string ev = body.substr(at, end - at);
    if (ev.rfind("data: ", 0) == 0) out.push_back(ev.substr(6));
    at = end + 2;
  }
  return out;
}

// Text and finish reason out of a stream of chunks; checks the shape on the way.
struct Streamed {
  std::string text, finish_reason;
  json usage;
  bool done_marker = false;
  bool role_first = false;
};
Streamed read_stream(const std::string& body, bool chat) {
  Streamed s;
  const auto events = sse_data(body);
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i] == "[DONE]") {
      s.done_marker = i + 1 == events.size();
      continue;
    }
    const json j = json::parse(events[i]);
    EXPECT_EQ(j.at("object"), chat ? "chat.completion.chunk" : "text_completion") << events[i];
    if (j.contains("usage") && !j["usage"].is_null()) s.usage = j["usage"];
    if (j.at("choices").empty()) continue;
    const json& c = j["choices"][0];
    if (chat) {
      if (i == 0) s.role_first = c["delta"].value("role", "") == "assistant";
      s.text += c["delta"].value("content", "");
    } else {
      s.text += c.at("text").get<std::string>();
    }
    if (!c["finish_reason"].is_null()) s.finish_reason = c["finish_reason"];
  }
  return s;
}

// What the service answers for a request, without HTTP.
std::string direct_text(node::InferenceService& svc, node::CompletionRequest r, int* completion_tokens = nullptr) {
  test::Collected c;
  svc.submit(std::move(r), c.callback());
  EXPECT_TRUE(c.wait());
  if (completion_tokens) *completion_tokens = c.last.completion_tokens;
  return c.text;
}

node::CompletionRequest greedy_request(std::vector<int32_t> prompt, int max_tokens) {
  node::CompletionRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  return r;
}

TEST_F(HttpApiTest, CompletionsWholeAndStreamed) {
  start();
  const auto prompt = svc_->tokenizer().encode("Once upon a time", true, false);
  int n_gen = 0;
  const std::string want = direct_text(*svc_, greedy_request(prompt, 24), &n_gen);
  ASSERT_GT(want.size(), 10u) << "the synthetic model says too little for this test";

  auto res = post("/v1/completions", {{"model", "synth"}, {"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const json j = json::parse(res->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], svc_->model_name());
  EXPECT_EQ(j["choices"][0]["text"], want);
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], n_gen);
  EXPECT_EQ(j["usage"]["total_tokens"], prompt.size() + static_cast<size_t>(n_gen));
  const std::string reason = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(reason == "length" || reason == "stop") << reason;

  res = post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 24}, {"temperature", 0}, {"stream", true},
                                 {"stream_options", {{"include_usage", true}}}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const Streamed s = read_stream(res->body, false);
  EXPECT_EQ(s.text, want);
  EXPECT_EQ(s.finish_reason, reason);
  EXPECT_TRUE(s.done_marker);
  EXPECT_EQ(s.usage.value("completion_tokens", -1), n_gen);
  EXPECT_GT(sse_data(res->body).size(), 3u) << "the answer came as one chunk";
}

TEST_F(HttpApiTest, ChatWholeAndStreamed) {
  start();
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                     {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "Hello"}}})}}});
  const std::string rendered = engine::render_chat(svc_->chat_template(), {{"system", "Be brief."}, {"user", "Hello"}}, true);
  auto r = greedy_request(svc_->tokenizer().encode(rendered, true, true), 20);
  r.stop_tokens = engine::chat_template_stop_tokens(svc_->chat_template(), svc_->tokenizer());
  r.stop = engine::chat_template_stop_strings(svc_->chat_template());
  const size_t n_prompt = r.prompt.size();
  const std::string want = direct_text(*svc_, r);
  ASSERT_FALSE(want.empty()) << "the synthetic model says nothing for this test";

  auto res = post("/v1/chat/completions", {{"model", "synth"}, {"messages", messages}, {"max_tokens", 20}, {"temperature", 0}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], want);
  EXPECT_EQ(j["usage"]["prompt_tokens"], n_prompt);
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);

  res = post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 20}, {"temperature", 0}, {"stream", true}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const Streamed s = read_stream(res->body, true);
  EXPECT_TRUE(s.role_first);
  EXPECT_EQ(s.text, want);
  EXPECT_EQ(s.finish_reason, j["choices"][0]["finish_reason"]);
  EXPECT_TRUE(s.done_marker);
}

TEST_F(HttpApiTest, SeededSamplingRepeatsAndConcurrentStreamsEqualSolo) {
  start();
  const json seeded = {{"prompt", "The cat"}, {"max_tokens", 16}, {"temperature", 1.0}, {"seed", 42}};
  auto a = post("/v1/completions", seeded), b = post("/v1/completions", seeded);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(json::parse(a->body)["choices"][0]["text"], json::parse(b->body)["choices"][0]["text"]);

  const std::vector<std::string> prompts = {"A", "Once upon a time there was", "x y z", "The quick brown fox jumps over"};
  std::vector<std::string> solo;
  for (const auto& p : prompts) {
    auto r = post("/v1/completions", {{"prompt", p}, {"max_tokens", 40}, {"temperature", 0}});
    ASSERT_TRUE(r);
    solo.push_back(json::parse(r->body)["choices"][0]["text"]);
  }
  std::vector<std::string> together(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] {
      auto r = post("/v1/completions", {{"prompt", prompts[i]}, {"max_tokens", 40}, {"temperature", 0}, {"stream", true}});
      if (r && r->status == 200) together[i] = read_stream(r->body, false).text;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(together, solo);
}

TEST_F(HttpApiTest, ModelsHealthClusterAndUnknownPaths) {
  start();
  auto c = client();
  auto res = c->Get("/v1/models");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  json j = json::parse(res->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], svc_->model_name());
  EXPECT_EQ(c->Get(("/v1/models/" + svc_->model_name()).c_str())->status, 200);
  EXPECT_EQ(c->Get("/v1/models/other")->status, 404);

  res = c->Get("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(json::parse(res->body)["status"], "ok");

  res = c->Get("/cluster");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  j = json::parse(res->body);
  ASSERT_EQ(j["nodes"].size(), 1u);
  EXPECT_EQ(j["nodes"][0]["layers"], json::array({0, 2}));
  EXPECT_EQ(j["scheduler"]["max_seqs"], 4);

  res = c->Get("/v2/nothing");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "not_found");
  res = c->Get("/v1/completions");  // POST only
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_TRUE(json::parse(res->body).contains("error"));
}

TEST_F(HttpApiTest, ApiKeyRequiredAndChecked) {
  HttpApiOptions o;
  o.api_keys = {"sk-first", "sk-second-key"};
  start(o);
  const json body = {{"prompt", "Hi"}, {"max_tokens", 2}};
  auto res = post("/v1/completions", body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(json::parse(res->body)["error"]["type"], "authentication_error");
  EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer");
  for (const char* bad : {"Bearer sk-firs", "Bearer sk-first2", "sk-first", "Basic sk-first", "Bearer "}) {
    res = post("/v1/completions", body, {{"Authorization", bad}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << bad;
  }
  EXPECT_EQ(client()->Get("/cluster")->status, 401);
  EXPECT_EQ(client()->Get("/v1/models")->status, 401);
  EXPECT_EQ(client()->Get("/health")->status, 200) << "health stays open for load balancers";
  for (const char* good : {"Bearer sk-first", "Bearer sk-second-key"}) {
    res = post("/v1/completions", body, {{"Authorization", good}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << good;
    EXPECT_EQ(res->body.find("sk-"), std::string::npos) << "the key is echoed";
  }
}

TEST_F(HttpApiTest, BadRequestsAreJsonErrorsAndTheServerKeepsServing) {
  start({}, /*n_ctx=*/64);
  struct Case {
    std::string path, body;
    int status;
    std::string code;
  };
  const std::string long_prompt(400, 'x');  // far beyond 64 tokens
  const std::vector<Case> cases = {
      {"/v1/completions", "{\"prompt\": \"hi\"", 400, "invalid_json"},
      {"/v1/completions", "[1, 2]", 400, "invalid_json"},
      {"/v1/completions", "", 400, "invalid_json"},
      {"/v1/completions", R"({"max_tokens": 4})", 400, "missing_required_parameter"},
      {"/v1/completions", R"({"prompt": 5})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": ["a", "b"]})", 400, "unsupported_parameter"},
      {"/v1/completions", R"({"prompt": [1, 99999]})", 400, "invalid_value"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": "many"})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 2.5})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 0})", 400, "invalid_value"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 65})", 400, "invalid_value"},
      {"/v1/completions", R"({"prompt": "hi", "temperature": "hot"})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "temperature": 3})", 400, "invalid_value"},
      {"/v1/completions", R"({"prompt": "hi", "top_p": -0.1})", 400, "invalid_value"},
      {"/v1/completions", R"({"prompt": "hi", "top_k": 1.5})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "seed": "x"})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "stop": 5})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "stop": ["a", 1]})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "stream": "yes"})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "model": 7})", 400, "invalid_type"},
      {"/v1/completions", R"({"prompt": "hi", "n": 2})", 400, "unsupported_parameter"},
      {"/v1/completions", R"({"prompt": "hi", "presence_penalty": 1})", 400, "unsupported_parameter"},
      {"/v1/completions", "{\"prompt\": \"" + long_prompt + "\"}", 400, "context_length_exceeded"},
      {"/v1/chat/completions", R"({"messages": "hi"})", 400, "invalid_type"},
      {"/v1/chat/completions", R"({"messages": []})", 400, "invalid_value"},
      {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400, "invalid_role"},
      {"/v1/chat/completions", R"({"messages": [{"content": "hi"}]})", 400, "invalid_type"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 5}]})", 400, "invalid_type"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400, "invalid_type"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]})", 400,
       "unsupported_parameter"},
      {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"" + long_prompt + "\"}]}", 400,
       "context_length_exceeded"},
  };
  for (const auto& c : cases) {
    auto res = client()->Post(c.path.c_str(), c.body, "application/json");
    ASSERT_TRUE(res) << c.body;
    EXPECT_EQ(res->status, c.status) << c.body << " -> " << res->body;
    json j;
    ASSERT_NO_THROW(j = json::parse(res->body)) << res->body;
    ASSERT_TRUE(j.contains("error")) << res->body;
    EXPECT_EQ(j["error"]["code"], c.code) << c.body << " -> " << res->body;
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  EXPECT_EQ(client()->Get("/health")->status, 200);
  auto res = post("/v1/chat/completions", {{"messages", {{{"role", "developer"}, {"content", "x"}}, {{"role", "user"}, {"content", "hi"}}}},
                                           {"max_tokens", 3}, {"stop", "zzz"}, {"presence_penalty", 0}, {"n", 1}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
}

TEST_F(HttpApiTest, BodyLimit) {
  HttpApiOptions o;
  o.max_body_bytes = 2048;
  start(o);
  auto res = post("/v1/completions", {{"prompt", std::string(5000, 'a')}, {"max_tokens", 2}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(json::parse(res->body)["error"]["code"], "request_too_large");
  res = post("/v1/completions", {{"prompt", "small"}, {"max_tokens", 2}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

}  // namespace
}  // namespace zen
