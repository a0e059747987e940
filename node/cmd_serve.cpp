// zen serve -m MODEL [--host 127.0.0.1] [--port 8080] [-t T] [--parallel N] [--api-key KEY]
//           [--chat-template NAME] [-c CTX] [--timeout S] [--max-body BYTES] [sampling defaults]
// Runs the model in this process (LocalService, continuous batching) behind the
// OpenAI-compatible HTTP API until SIGINT or SIGTERM. --port 0 picks a free port; the line
// "zen serve: listening on http://HOST:PORT/v1" on stderr says which.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "node/cli.h"
#include "node/http_api.h"
#include "node/local_service.h"

namespace zen::cli {

namespace {

struct ServeOptions {
  std::string model;
  node::LocalServiceOptions service;
  node::HttpApiOptions http;
  int threads = 0;
  int http_threads = 0;
  bool lookup = false;
  bool quiet = false;
};

void run(ServeOptions o) {
  // Every thread started from here on inherits the blocked set, so the signals reach only
  // the sigwait below and shutdown is orderly.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  o.service.n_threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  o.service.max_batch_tokens = std::max(o.service.max_batch_tokens, o.service.max_seqs);
  if (!o.service.draft_model.empty() && o.lookup) throw std::invalid_argument("--draft and --lookup exclude each other");
  o.service.speculative = !o.service.draft_model.empty() ? "draft" : o.lookup ? "lookup" : "off";
  auto service = node::LocalService::open(o.model, o.service);
  // A stream holds an HTTP thread for its whole length: room for every slot and the queue.
  o.http.threads = o.http_threads > 0 ? o.http_threads : std::max(8, 2 * o.service.max_seqs + 4);
  o.http.log_requests = !o.quiet;
  node::HttpApi api(*service, o.http);
  api.start();
  std::fprintf(stderr, "zen serve: %s | template %s | context %d | %d parallel | %d threads%s%s\n",
               service->model_name().c_str(), service->chat_template().c_str(), service->n_ctx(), o.service.max_seqs,
               o.service.n_threads, o.http.api_keys.empty() ? "" : " | API key required",
               o.service.speculative == "off" ? "" : (" | speculative: " + o.service.speculative).c_str());
  std::fprintf(stderr, "zen serve: listening on http://%s:%d/v1\n", o.http.host.c_str(), api.port());
  std::fflush(stderr);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "zen serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  api.stop();
  service.reset();
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
}

}  // namespace

void add_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "serve a model on this machine through the OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", o->model, "GGUF model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--host", o->http.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o->http.port, "port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("-t,--threads", o->threads, "compute threads (default: all cores)");
  cmd->add_option("--parallel", o->service.max_seqs, "requests generating at once")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--queue", o->service.max_queue, "requests waiting beyond --parallel before 503")->capture_default_str();
  cmd->add_option("--chunk", o->service.max_chunk, "prompt tokens one request reads per step")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch-tokens", o->service.max_batch_tokens, "rows per forward step over all requests")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-c,--ctx", o->service.n_ctx, "context size per request (default: the model's)");
  cmd->add_option("--chat-template", o->service.chat_template, "chat template name (default: detected from the model)");
  cmd->add_option("--model-name", o->service.model_name, "the model id the API reports (default: general.name)");
  cmd->add_option("--api-key", o->http.api_keys, "require 'Authorization: Bearer KEY' (repeatable; or set ZEN_API_KEY)")
      ->envname("ZEN_API_KEY");
  cmd->add_option("--max-body", o->http.max_body_bytes, "largest request body in bytes")->capture_default_str();
  cmd->add_option("--timeout", o->http.request_timeout_s, "seconds a request may run (0: no limit)")->capture_default_str();
  cmd->add_option("--http-threads", o->http_threads, "HTTP connections served at once (default: 2 x parallel + 4, at least 8)");
  cmd->add_option("--draft", o->service.draft_model,
                  "speculative decoding with this draft model (same vocabulary, smaller or lower precision)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--lookup", o->lookup, "speculative decoding with prompt-lookup drafts (n-grams of the context)");
  cmd->add_option("--spec-k", o->service.spec_k_max, "most tokens drafted per pass (adapts to acceptance)")
      ->capture_default_str()->check(CLI::Range(1, 32));
  cmd->add_flag("-q,--quiet", o->quiet, "no line per request on stderr");
  add_sampling_options(cmd, o->http.sampling);  // defaults for fields a request leaves out
  cmd->callback([o, cmd] {
    o->http.fixed_seed = cmd->count("--seed") > 0;
    run(*o);
  });
}

}  // namespace zen::cli
