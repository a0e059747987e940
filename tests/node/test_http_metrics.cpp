// GET /metrics (Prometheus text) and the speculative statistics in a response's usage.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>

#include "node/metrics.h"
#include "tests/node/http_test_fixture.h"

namespace zen {
namespace {

using nlohmann::json;

// The value of the sample `name{labels}` (labels as written, "" for none); NaN when absent.
double sample(const std::string& text, const std::string& name, const std::string& labels = "") {
  std::istringstream in(text);
  const std::string key = labels.empty() ? name + " " : name + "{" + labels + "} ";
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size()));
  return std::nan("");
}

TEST(MetricsText, FormatsFamiliesOnceAndEscapesLabels) {
  node::MetricsText m;
  m.counter("zen_x_total", "an x", 3, {{"path", "/a\"b\\c\nd"}});
  m.counter("zen_x_total", "an x", 4.5, {{"path", "/e"}});
  m.gauge("zen_y", "a y", 1e20);
  EXPECT_EQ(m.str(),
            "# HELP zen_x_total an x\n# TYPE zen_x_total counter\n"
            "zen_x_total{path=\"/a\\\"b\\\\c\\nd\"} 3\nzen_x_total{path=\"/e\"} 4.5\n"
            "# HELP zen_y a y\n# TYPE zen_y gauge\nzen_y 1e+20\n");
  EXPECT_THROW(m.gauge("zen_x_total", "again", 1), std::logic_error) << "one name, two types";
  EXPECT_THROW(m.counter("zen_x_total", "apart", 1), std::logic_error) << "a family's samples belong together";
  EXPECT_THROW(m.gauge("9bad", "", 1), std::invalid_argument);
  EXPECT_THROW(m.gauge("zen_z", "", 1, {{"bad-label", "v"}}), std::invalid_argument);
}

TEST_F(HttpApiTest, MetricsCountRequestsTokensAndResponses) {
  start();
  auto c = client();
  ASSERT_EQ(c->Get("/health")->status, 200);
  ASSERT_EQ(c->Get("/nowhere")->status, 404);
  auto r = post("/v1/completions", {{"prompt", "Once upon"}, {"max_tokens", 7}, {"temperature", 0}});
  ASSERT_EQ(r->status, 200) << r->body;
  const int completion = json::parse(r->body)["usage"]["completion_tokens"];
  const int prompt = json::parse(r->body)["usage"]["prompt_tokens"];
  auto m = c->Get("/metrics");
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const std::string& t = m->body;
  EXPECT_EQ(sample(t, "zen_http_responses_total", "path=\"/health\",status=\"200\""), 1);
  EXPECT_EQ(sample(t, "zen_http_responses_total", "path=\"other\",status=\"404\""), 1);
  EXPECT_EQ(sample(t, "zen_http_responses_total", "path=\"/v1/completions\",status=\"200\""), 1);
  EXPECT_EQ(sample(t, "zen_generated_tokens_total"), completion);
  EXPECT_EQ(sample(t, "zen_prompt_tokens_total"), prompt);
  EXPECT_EQ(sample(t, "zen_requests_completed_total"), 1);
  EXPECT_EQ(sample(t, "zen_requests_queued"), 0);
  EXPECT_GE(sample(t, "zen_batch_steps_total"), completion);
  EXPECT_GE(sample(t, "zen_batch_rows_total"), prompt + completion - 1);
  EXPECT_GT(sample(t, "zen_stage_busy_seconds_total", "stage=\"0\",node=\"local\""), 0);
  EXPECT_EQ(sample(t, "zen_kv_cache_bytes", "node=\"local\""), 0) << "the finished request's cache is freed";
  EXPECT_EQ(sample(t, "zen_spec_passes_total"), 0);
  // Every line is a comment or `name{labels} value`, and each family is announced once.
  std::istringstream in(t);
  std::set<std::string> types;
  const std::regex line_re(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInfa]+$)");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      EXPECT_TRUE(types.insert(line).second) << line;
    } else if (line[0] != '#') {
      EXPECT_TRUE(std::regex_match(line, line_re)) << line;
    }
  }
}

TEST_F(HttpApiTest, MetricsNeedTheApiKeyWhenOneIsSet) {
  node::HttpApiOptions o;
  o.api_keys = {"k1"};
  start(o);
  EXPECT_EQ(client()->Get("/metrics")->status, 401);
  EXPECT_EQ(client()->Get("/metrics", {{"Authorization", "Bearer k1"}})->status, 200);
}

TEST_F(HttpApiTest, UsageReportsSpeculativeDecoding) {
  node::LocalServiceOptions so;
  so.speculative = "lookup";
  start({}, 256, so);
  // A prompt that repeats itself gives prompt lookup something to copy.
  std::string p;
  for (int i = 0; i < 8; ++i) p += "one two three four ";
  auto r = post("/v1/completions", {{"prompt", p}, {"max_tokens", 24}, {"temperature", 0}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json u = json::parse(r->body)["usage"];
  ASSERT_TRUE(u.contains("speculative")) << u.dump();
  const json s = u["speculative"];
  EXPECT_GT(s["passes"].get<int>(), 0);
  EXPECT_LE(s["accepted_tokens"].get<int>(), s["drafted_tokens"].get<int>());
  EXPECT_GE(s["tokens_per_pass"].get<double>(), 1.0);
  const std::string t = client()->Get("/metrics")->body;
  EXPECT_EQ(sample(t, "zen_spec_passes_total"), s["passes"].get<double>());
  EXPECT_EQ(sample(t, "zen_spec_drafted_tokens_total"), s["drafted_tokens"].get<double>());
}

}  // namespace
}  // namespace zen
