// zen-node: one node of a zen cluster. The coordinator owns the model, the plan and the
// HTTP API; workers dial it, receive (or map) their slice and run their stage.
//   zen-node --config cluster.toml [flags overriding the file]
#include <algorithm>
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <thread>

#include "node/config.h"
#include "node/coordinator.h"
#include "node/http_api.h"
#include "node/peer.h"
#include "node/worker.h"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

void wait_for_signal() {
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zen-node: one node of a zen cluster (see cluster.example.toml)"};
  zen::node::ConfigFlags flags;
  zen::node::add_config_flags(app, flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    zen::node::NodeConfig cfg = zen::node::config_from_flags(flags);
    zen::node::log_line(cfg.name, "starting: " + zen::node::describe(cfg));
    if (cfg.role == zen::node::Role::coordinator) {
      zen::node::Coordinator coord(cfg);
      std::unique_ptr<zen::node::HttpApi> http;
      if (cfg.http) {
        zen::node::HttpApiOptions ho;
        ho.host = cfg.http->host;
        ho.port = cfg.http->port;
        ho.api_keys = cfg.api_keys;
        ho.max_body_bytes = cfg.limits.max_request_bytes;
        ho.request_timeout_s = static_cast<double>(cfg.limits.request_timeout.count()) / 1000.0;
        // A stream holds an HTTP thread for its whole length: room for every sequence, as many
        // waiting their turn, and a few short requests (/health, /cluster, /metrics) beside them.
        ho.threads = std::max(8, 2 * cfg.limits.max_sequences + 4);
        http = std::make_unique<zen::node::HttpApi>(coord, ho);
        http->start();
        zen::node::log_line(cfg.name, "HTTP API on http://" + cfg.http->host + ":" + std::to_string(http->port()));
      }
      wait_for_signal();
      zen::node::log_line(cfg.name, "stopping");
      if (http) http->stop();
    } else {
      zen::node::Worker worker(cfg);
      std::thread t([&] { worker.run(); });
      wait_for_signal();
      zen::node::log_line(cfg.name, "stopping");
      worker.stop();
      t.join();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zen-node: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
