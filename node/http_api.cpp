#include "node/http_api.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "node/http_api_json.h"

namespace zen::node {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Events of one request, handed from the service thread to the HTTP thread that answers it.
struct Channel {
  std::mutex m;
  std::condition_variable cv;
  std::deque<TokenEvent> events;
  bool closed = false;  // nobody listens any more: the service's next on_event gets false

  bool push(const TokenEvent& ev) {
    {
      std::lock_guard<std::mutex> lk(m);
      if (closed) return false;
      events.push_back(ev);
    }
    cv.notify_one();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lk(m);
    closed = true;
  }
  // The events that arrived, waiting at most `slice` for the first.
  std::deque<TokenEvent> take(std::chrono::milliseconds slice) {
    std::unique_lock<std::mutex> lk(m);
    cv.wait_for(lk, slice, [&] { return !events.empty(); });
    std::deque<TokenEvent> out;
    out.swap(events);
    return out;
  }
};

constexpr std::chrono::milliseconds kPollSlice{100};  // how often waiters look at deadlines and shutdown

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, const api::ApiError& e) { send_json(res, e.status(), api::error_body(e)); }

// Compares without an early exit, so the time taken does not tell how much of a key matched.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

std::string sse(const json& j) { return "data: " + j.dump() + "\n\n"; }

}  // namespace

struct HttpApi::Impl {
  InferenceService& svc;
  HttpApiOptions opt;
  httplib::Server svr;
  std::thread thread;
  int port = -1;
  std::atomic<bool> stopping{false};
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  std::mutex rng_mu;
  std::mt19937_64 rng{std::random_device{}()};

  Impl(InferenceService& s, HttpApiOptions o) : svc(s), opt(std::move(o)) {}

  uint64_t random() {
    std::lock_guard<std::mutex> lk(rng_mu);
    return rng();
  }

  std::string new_id(api::Endpoint ep) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(random()));
    return std::string(ep == api::Endpoint::chat ? "chatcmpl-" : "cmpl-") + hex;
  }

  // Responses by (endpoint, status); unknown paths count as "other" so that a scanner cannot
  // grow the table.
  std::mutex count_mu;
  std::map<std::pair<std::string, int>, uint64_t> responses;
  void count_response(const std::string& path, int status) {
    static const char* const known[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/cluster", "/metrics"};
    std::string p = "other";
    for (const char* k : known)
      if (path == k) p = k;
    if (path.rfind("/v1/models/", 0) == 0) p = "/v1/models/{id}";
    std::lock_guard<std::mutex> lk(count_mu);
    ++responses[{p, status}];
  }

  bool authorized(const httplib::Request& req) const {
    if (opt.api_keys.empty() || req.path == "/health") return true;
    const std::string h = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (h.size() <= prefix.size() || h.compare(0, prefix.size(), prefix) != 0) return false;
    const std::string key = h.substr(prefix.size());
    bool ok = false;
    for (const auto& k : opt.api_keys) ok |= same_secret(key, k);
    return ok;
  }

  Clock::time_point deadline() const {
    if (opt.request_timeout_s <= 0) return Clock::time_point::max();
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opt.request_timeout_s));
  }

  void setup();
  void generate(const httplib::Request& hreq, httplib::Response& res, api::Endpoint ep);
  void answer_whole(httplib::Response& res, const api::ResponseMeta& meta, uint64_t id,
                    const std::shared_ptr<Channel>& ch, Clock::time_point until);
  void answer_stream(httplib::Response& res, const api::ResponseMeta& meta, uint64_t id,
                     const std::shared_ptr<Channel>& ch, Clock::time_point until, bool include_usage);
};

void HttpApi::Impl::setup() {
  const int n_threads = std::max(1, opt.threads);
  svr.new_task_queue = [n_threads] { return new httplib::ThreadPool(static_cast<size_t>(n_threads)); };
  svr.set_payload_max_length(opt.max_body_bytes);
  svr.set_keep_alive_timeout(2);
  // SO_REUSEADDR (restart at once after a stop) but not httplib's default SO_REUSEPORT, which
  // would let a second server bind the same port and silently take half the connections.
  svr.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    count_response(req.path, res.status);
    // Method, path and status only: never headers (API keys) or bodies (prompts).
    if (opt.log_requests) std::fprintf(stderr, "zen http: %s %s %d\n", req.method.c_str(), req.path.c_str(), res.status);
  });

  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, api::ApiError(401, "authentication_error", "invalid_api_key",
                                  "a valid API key is required: send the header 'Authorization: Bearer KEY'"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses httplib sets by itself (no route, body too large, unreadable request) get the
  // same JSON error shape as ours; responses that already have a body are left alone.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404)
      send_json(res, 404, api::error_body("no such endpoint: " + req.method + " " + req.path, "invalid_request_error", "not_found"));
    else if (res.status == 413)
      send_json(res, 413, api::error_body("the request body is larger than the limit of " + std::to_string(opt.max_body_bytes) +
                                          " bytes", "invalid_request_error", "request_too_large"));
    else
      send_json(res, res.status, api::error_body("HTTP error " + std::to_string(res.status),
                                                 res.status >= 500 ? "server_error" : "invalid_request_error", "http_error"));
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_json(res, 500, api::error_body(what, "server_error", "internal_error"));
  });

  svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, api::Endpoint::completions);
  });
  svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, api::Endpoint::chat);
  });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, api::models_json(svc.model_name(), created));
  });
  svr.Get("/v1/models/(.+)", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] == svc.model_name()) send_json(res, 200, api::model_json(svc.model_name(), created));
    else send_error(res, api::ApiError(404, "invalid_request_error", "model_not_found",
                                       "no model '" + req.matches[1].str() + "'; this server has '" + svc.model_name() + "'"));
  });
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}, {"model", svc.model_name()}});
  });
  svr.Get("/cluster", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, svc.cluster_info());
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    MetricsText m;
    {
      std::lock_guard<std::mutex> lk(count_mu);
      for (const auto& [key, n] : responses)
        m.counter("zen_http_responses_total", "HTTP responses by endpoint and status", static_cast<double>(n),
                  {{"path", key.first}, {"status", std::to_string(key.second)}});
    }
    svc.write_metrics(m);
    res.status = 200;
    res.set_content(m.str(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

void HttpApi::Impl::generate(const httplib::Request& hreq, httplib::Response& res, api::Endpoint ep) {
  try {
    if (stopping) throw api::ApiError(503, "server_error", "shutting_down", "the server is shutting down");
    api::ParsedRequest p = api::parse_request(hreq.body, ep, svc, opt.sampling, opt.fixed_seed ? opt.sampling.seed : random());
    auto ch = std::make_shared<Channel>();
    uint64_t id = 0;
    try {
      id = svc.submit(std::move(p.req), [ch](const TokenEvent& ev) { return ch->push(ev); });
    } catch (const OverloadedError& e) {
      throw api::ApiError(503, "server_error", "overloaded", e.what());
    } catch (const RequestError& e) {
      throw api::bad_request(e.what());
    }
    const api::ResponseMeta meta{new_id(ep), static_cast<int64_t>(std::time(nullptr)), svc.model_name(), ep};
    if (p.stream) answer_stream(res, meta, id, ch, deadline(), p.include_usage);
    else answer_whole(res, meta, id, ch, deadline());
  } catch (const api::ApiError& e) {
    send_error(res, e);
  }
}

void HttpApi::Impl::answer_whole(httplib::Response& res, const api::ResponseMeta& meta, uint64_t id,
                                 const std::shared_ptr<Channel>& ch, Clock::time_point until) {
  std::string text;
  for (;;) {
    for (const TokenEvent& ev : ch->take(kPollSlice)) {
      text += ev.text;
      if (!ev.done) continue;
      if (ev.finish_reason == "error")
        throw api::ApiError(500, "server_error", "generation_failed", "generation failed: " + ev.error);
      if (ev.finish_reason == "cancelled")
        throw api::ApiError(503, "server_error", "cancelled", "the request was cancelled by the server");
      send_json(res, 200, api::completion_json(meta, text, ev));
      return;
    }
    const bool late = Clock::now() >= until;
    if (late || stopping) {
      ch->close();
      svc.cancel(id);
      if (late)
        throw api::ApiError(504, "server_error", "timeout",
                            "the request took longer than the server's limit of " + json(opt.request_timeout_s).dump() + " s");
      throw api::ApiError(503, "server_error", "shutting_down", "the server is shutting down");
    }
  }
}

void HttpApi::Impl::answer_stream(httplib::Response& res, const api::ResponseMeta& meta, uint64_t id,
                                  const std::shared_ptr<Channel>& ch, Clock::time_point until, bool include_usage) {
  struct State {
    bool opened = false;
    bool finished = false;
  };
  auto st = std::make_shared<State>();
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto provider = [this, meta, id, ch, until, include_usage, st](size_t, httplib::DataSink& sink) {
    auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
    auto end = [&](const std::string& last) {
      st->finished = true;
      if (!last.empty()) write(last);
      write("data: [DONE]\n\n");
      sink.done();
      return true;
    };
    auto gone = [&] {  // the client went away: cancel its request
      ch->close();
      svc.cancel(id);
      return false;
    };
    if (!st->opened) {
      st->opened = true;
      if (meta.endpoint == api::Endpoint::chat && !write(sse(api::chunk_json(meta, "", "", /*role_only=*/true)))) return gone();
    }
    for (const TokenEvent& ev : ch->take(kPollSlice)) {
      if (!ev.done) {
        if (!ev.text.empty() && !write(sse(api::chunk_json(meta, ev.text, "")))) return gone();
        continue;
      }
      if (ev.finish_reason == "error" || ev.finish_reason == "cancelled") {
        const std::string msg = ev.finish_reason == "error" ? "generation failed: " + ev.error : "the request was cancelled by the server";
        return end(sse(api::error_body(msg, "server_error", ev.finish_reason)));
      }
      json last = api::chunk_json(meta, ev.text, ev.finish_reason);
      last["usage"] = api::usage_json(ev);
      std::string tail = sse(last);
      if (include_usage) tail += sse(api::usage_chunk_json(meta, ev));
      return end(tail);
    }
    const bool late = Clock::now() >= until;
    if (late || stopping) {
      ch->close();
      svc.cancel(id);
      const std::string msg = late ? "the request took longer than the server's limit of " + json(opt.request_timeout_s).dump() + " s"
                                   : "the server is shutting down";
      return end(sse(api::error_body(msg, "server_error", late ? "timeout" : "shutting_down")));
    }
    return true;
  };
  // However the response ends (written, client gone, server stopping), an unfinished request
  // is cancelled.
  auto release = [this, id, ch, st](bool) {
    if (st->finished) return;
    ch->close();
    svc.cancel(id);
  };
  res.set_chunked_content_provider("text/event-stream", std::move(provider), std::move(release));
}

HttpApi::HttpApi(InferenceService& service, HttpApiOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {
  impl_->setup();
}

HttpApi::~HttpApi() { stop(); }

void HttpApi::start() {
  Impl& m = *impl_;
  if (m.thread.joinable()) throw std::logic_error("HttpApi::start: already started");
  if (m.opt.port < 0 || m.opt.port > 65535) throw std::invalid_argument("port must be in [0, 65535]");
  if (m.opt.port == 0) {
    m.port = m.svr.bind_to_any_port(m.opt.host);
  } else {
    m.port = m.svr.bind_to_port(m.opt.host, m.opt.port) ? m.opt.port : -1;
  }
  if (m.port <= 0)
    throw std::runtime_error("cannot listen on " + m.opt.host + ":" + std::to_string(m.opt.port) +
                             " (address in use, or not an address of this machine?)");
  m.thread = std::thread([&m] { m.svr.listen_after_bind(); });
  // Return once the accept loop runs, so stop() can always end it.
  for (int i = 0; i < 5000 && !m.svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void HttpApi::stop() {
  Impl& m = *impl_;
  if (!m.thread.joinable()) return;
  m.stopping = true;  // waiting handlers and open streams see it within kPollSlice
  m.svr.stop();
  m.thread.join();
}

int HttpApi::port() const { return impl_->port; }

}  // namespace zen::node
