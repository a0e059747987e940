// zen submit --coordinator HOST:PORT -p PROMPT [-n N] [--temp X] [--top-k K] [--top-p P]
//            [--min-p P] [--seed S] [--chat [--system TEXT]] [--api-key KEY] [--timeout S]
// Sends a prompt to a zen server (`zen serve`, or a cluster's coordinator) and streams the
// answer to stdout as it comes (server-sent events); a summary line goes to stderr. Sampling
// fields left out are the server's defaults.
#include <httplib.h>

#include <cstdio>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "node/cli.h"

namespace zen::cli {

namespace {

using nlohmann::json;

struct SubmitOptions {
  std::string coordinator = "127.0.0.1:8080";
  std::string prompt, system, api_key;
  int n_predict = 128;
  float temp = 0, top_p = 0, min_p = 0;
  int top_k = 0;
  int64_t seed = 0;
  bool chat = false;
  double timeout_s = 600;
};

struct Endpoint {
  std::string host;
  int port = 8080;
};

// "HOST:PORT", "HOST" (port 8080), "http://HOST:PORT/", "[::1]:PORT".
Endpoint parse_endpoint(std::string s) {
  if (s.rfind("http://", 0) == 0) s.erase(0, 7);
  else if (s.find("://") != std::string::npos) throw std::invalid_argument("--coordinator: only http:// is supported: " + s);
  if (const size_t slash = s.find('/'); slash != std::string::npos) s.resize(slash);
  Endpoint e;
  const size_t colon = s.rfind(':');
  const size_t bracket = s.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    const std::string port = s.substr(colon + 1);
    size_t used = 0;
    int p = -1;
    try {
      p = std::stoi(port, &used);
    } catch (const std::exception&) {
    }
    if (used != port.size() || p < 1 || p > 65535) throw std::invalid_argument("--coordinator: bad port '" + port + "'");
    e.port = p;
    s.resize(colon);
  }
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (s.empty()) throw std::invalid_argument("--coordinator: no host");
  e.host = s;
  return e;
}

struct StreamResult {
  std::string finish_reason, error;
  json usage;
  bool done = false;
};

// One server-sent event: prints its text, records the end.
void on_event(const std::string& ev, bool chat, StreamResult& out) {
  if (ev.rfind("data: ", 0) != 0) return;  // comments and other fields
  const std::string data = ev.substr(6);
  if (data == "[DONE]") {
    out.done = true;
    return;
  }
  const json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw std::runtime_error("the server sent an event that is not JSON");
  if (j.contains("error")) {
    out.error = j["error"].value("message", "unknown error");
    return;
  }
  if (j.contains("usage") && j["usage"].is_object()) out.usage = j["usage"];
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
  const json& c = j["choices"][0];
  std::string text;
  if (chat && c.contains("delta") && c["delta"].contains("content") && c["delta"]["content"].is_string())
    text = c["delta"]["content"].get<std::string>();
  else if (!chat && c.contains("text") && c["text"].is_string())
    text = c["text"].get<std::string>();
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (c.contains("finish_reason") && c["finish_reason"].is_string()) out.finish_reason = c["finish_reason"];
}

void run(const SubmitOptions& o, const CLI::App& cmd) {
  const Endpoint ep = parse_endpoint(o.coordinator);
  json body = {{"max_tokens", o.n_predict}, {"stream", true}};
  if (o.chat) {
    json messages = json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", o.prompt}});
    body["messages"] = messages;
  } else {
    body["prompt"] = o.prompt;
  }
  if (cmd.count("--temp")) body["temperature"] = o.temp;
  if (cmd.count("--top-k")) body["top_k"] = o.top_k;
  if (cmd.count("--top-p")) body["top_p"] = o.top_p;
  if (cmd.count("--min-p")) body["min_p"] = o.min_p;
  if (cmd.count("--seed")) body["seed"] = o.seed;

  httplib::Client cli(ep.host, ep.port);
  cli.set_connection_timeout(10, 0);
  const auto timeout = static_cast<time_t>(o.timeout_s > 0 ? o.timeout_s : 24 * 3600);
  cli.set_read_timeout(timeout, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = o.chat ? "/v1/chat/completions" : "/v1/completions";
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  if (!o.api_key.empty()) req.set_header("Authorization", "Bearer " + o.api_key);
  req.body = body.dump();
  int status = 0;
  std::string pending, error_body;
  StreamResult result;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status != 200) {
      error_body.append(data, n);
      return error_body.size() < (1u << 20);
    }
    pending.append(data, n);
    for (size_t at; (at = pending.find("\n\n")) != std::string::npos;) {
      on_event(pending.substr(0, at), o.chat, result);
      pending.erase(0, at + 2);
    }
    return result.error.empty();
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool sent = cli.send(req, res, err);
  if (!result.error.empty()) {
    std::fputc('\n', stdout);
    throw std::runtime_error("the server stopped the answer: " + result.error);
  }
  if (!sent)
    throw std::runtime_error("no answer from " + ep.host + ":" + std::to_string(ep.port) + ": " + httplib::to_string(err));
  if (status != 200) {
    const json j = json::parse(error_body, nullptr, false);
    const std::string msg = !j.is_discarded() && j.contains("error") ? j["error"].value("message", error_body) : error_body;
    throw std::runtime_error("the server refused the request (HTTP " + std::to_string(status) + "): " + msg);
  }
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!result.done) throw std::runtime_error("the stream ended before the server finished it");
  std::fprintf(stderr, "zen submit: %d prompt tokens, %d generated, finish reason %s\n",
               result.usage.value("prompt_tokens", 0), result.usage.value("completion_tokens", 0),
               result.finish_reason.c_str());
}

}  // namespace

void add_submit(CLI::App& app) {
  auto o = std::make_shared<SubmitOptions>();
  CLI::App* cmd = app.add_subcommand("submit", "send a prompt to a zen server and stream the answer");
  cmd->add_option("--coordinator", o->coordinator, "server address HOST:PORT")->capture_default_str();
  cmd->add_option("-p,--prompt", o->prompt, "prompt text (with --chat: the user message)")->required();
  cmd->add_option("-n,--n-predict", o->n_predict, "tokens to generate at most")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--temp", o->temp, "temperature (0 = greedy; default: the server's)");
  cmd->add_option("--top-k", o->top_k, "top-k (0 = off; default: the server's)");
  cmd->add_option("--top-p", o->top_p, "top-p (1 = off; default: the server's)");
  cmd->add_option("--min-p", o->min_p, "min-p (0 = off; default: the server's)");
  cmd->add_option("--seed", o->seed, "random seed (default: a random one)");
  cmd->add_flag("--chat", o->chat, "send the prompt as a chat message (the model's chat template applies)");
  cmd->add_option("--system", o->system, "system message (with --chat)");
  cmd->add_option("--api-key", o->api_key, "API key (or set ZEN_API_KEY)")->envname("ZEN_API_KEY");
  cmd->add_option("--timeout", o->timeout_s, "seconds to wait for the answer (0: no limit)")->capture_default_str();
  cmd->callback([o, cmd] { run(*o, *cmd); });
}

}  // namespace zen::cli
