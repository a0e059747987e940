#include "node/peer.h"

#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

namespace zen::node {

transport::Credentials credentials(const NodeConfig& cfg) {
  transport::Credentials c;
  c.identity = transport::load_or_create_key_file(cfg.key_file);
  c.cluster_secret = load_cluster_secret(cfg);
  c.allow_list = cfg.allow;
  return c;
}

transport::LinkOptions link_options(const NodeConfig& cfg) {
  transport::LinkOptions o;
  o.keepalive_interval = cfg.heartbeat_interval;
  // A peer silent for longer than the failure timeout is gone.
  o.read_timeout = std::max(cfg.failure_timeout, std::chrono::milliseconds(500));
  o.bench_shapes = cfg.bench_shapes;
  const std::string name = cfg.name;
  o.log = [name](std::string_view line) { log_line(name, std::string(line)); };
  return o;
}

bool send_wait(transport::Link& link, const transport::Message& m, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    switch (link.send(m)) {
      case transport::SendResult::ok: return true;
      case transport::SendResult::closed:
      case transport::SendResult::too_large: return false;
      case transport::SendResult::queue_full: break;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void log_line(const std::string& node, const std::string& text) {
  static std::mutex mu;
  // One thread at a time from here: the time zone that localtime_r reads (and may load on
  // first use) is process-wide.
  std::lock_guard<std::mutex> lk(mu);
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%H:%M:%S", &tm);
  std::fprintf(stderr, "%s zen-node %s: %s\n", ts, node.c_str(), text.c_str());
  std::fflush(stderr);
}

}  // namespace zen::node
