// The OpenAI-compatible HTTP API in front of an InferenceService (cpp-httplib, a thread pool):
//   POST /v1/completions, POST /v1/chat/completions (both with "stream": true as server-sent
//   events), GET /v1/models, GET /v1/models/{id}, GET /health, GET /cluster.
// Errors are OpenAI-style JSON {"error": {"message", "type", "code"}} with a 4xx/5xx status; a
// bad request never stops the server. A streaming client that goes away cancels its request.
// Nothing secret (API keys, headers, bodies) is ever logged. docs/API.md is the reference.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "node/service.h"

namespace zen::node {

struct HttpApiOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: an ephemeral port (port() reports it)
  std::vector<std::string> api_keys;    // non-empty: every endpoint but /health needs "Authorization: Bearer KEY"
  size_t max_body_bytes = 1 << 20;      // larger request bodies get 413
  double request_timeout_s = 600;       // a request running longer is cancelled (0: no limit)
  int threads = 8;                      // connections served at once (a stream holds one)
  engine::SamplerParams sampling;       // defaults for fields a request leaves out
  bool fixed_seed = false;              // a request without "seed" uses sampling.seed (else a random one)
  bool log_requests = false;            // one line per request on stderr: method, path, status
};

class HttpApi {
 public:
  // `service` must outlive the HttpApi (stop() cancels what is still open through it).
  HttpApi(InferenceService& service, HttpApiOptions options);
  ~HttpApi();  // stop()
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds the address (throws std::runtime_error when it cannot) and serves on a background
  // thread until stop().
  void start();
  // Ends open streams (their requests are cancelled), stops listening, joins the threads.
  void stop();
  int port() const;  // the bound port, after start()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zen::node
