// Starts real zen-node processes on 127.0.0.1 for end-to-end tests: a coordinator (ports
// chosen by the OS, read back from its log) and N workers, each with its own data folder.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "transport/keys.h"

namespace zen::test {

namespace fs = std::filesystem;

inline std::string zen_node_binary() { return std::string(ZEN_BINARY_DIR) + "/bin/zen-node"; }

struct Process {
  pid_t pid = -1;
  fs::path log;
  // Starts `args` with stdout and stderr to `log`.
  void start(const std::vector<std::string>& args, const fs::path& logfile) {
    log = logfile;
    pid = ::fork();
    if (pid == 0) {
      FILE* f = std::fopen(logfile.c_str(), "w");
      ::dup2(::fileno(f), 1);
      ::dup2(::fileno(f), 2);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  std::string read_log() const {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  void kill(int sig = SIGTERM) {
    if (pid <= 0) return;
    ::kill(pid, sig);
    for (int i = 0; i < 100; ++i) {
      int st;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~Process() { kill(); }
};

class LocalCluster {
 public:
  // `split`: forced layers per stage ("" = planned). Workers are named w1..wN.
  LocalCluster(const std::string& model, int workers, const std::string& split, const fs::path& dir,
               std::vector<std::string> extra_coordinator_args = {}, bool no_discovery = true)
      : dir_(dir) {
    fs::create_directories(dir);
    secret_ = (dir / "secret").string();
    if (!fs::exists(secret_)) transport::write_cluster_secret_file(secret_, transport::generate_cluster_secret());
    std::vector<std::string> args = {zen_node_binary(), "--role", "coordinator", "--name", "coord", "--listen",
                                     "127.0.0.1:0", "--http", "127.0.0.1:0", "--model", model,
                                     "--cluster-secret-file", secret_, "--data-dir", (dir / "coord").string(),
                                     "-t", "1"};
    if (no_discovery) args.push_back("--no-discovery");
    if (!split.empty()) args.insert(args.end(), {"--layer-split", split});
    args.insert(args.end(), extra_coordinator_args.begin(), extra_coordinator_args.end());
    coordinator_.start(args, dir / "coord.log");
    peer_port_ = wait_port(R"(listening for nodes on 127\.0\.0\.1:(\d+))");
    http_port_ = wait_port(R"(HTTP API on http://127\.0\.0\.1:(\d+))");
    workers_.resize(static_cast<size_t>(workers));
    for (int i = 0; i < workers; ++i) start_worker(i);
  }

  void start_worker(int i, const std::vector<std::string>& extra = {}) {
    const std::string name = "w" + std::to_string(i + 1);
    std::vector<std::string> args = {zen_node_binary(), "--role", "worker", "--name", name, "--listen", "127.0.0.1:0",
                                     "--peer", "127.0.0.1:" + std::to_string(peer_port_), "--cluster-secret-file",
                                     secret_, "--data-dir", (dir_ / name).string(), "--no-discovery", "-t", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    workers_[static_cast<size_t>(i)].start(args, dir_ / (name + ".log"));
  }
  Process& worker(int i) { return workers_[static_cast<size_t>(i)]; }
  const std::string& secret_file() const { return secret_; }
  Process& coordinator() { return coordinator_; }
  int http_port() const { return http_port_; }

  nlohmann::json cluster() {
    httplib::Client c("127.0.0.1", http_port_);
    auto r = c.Get("/cluster");
    if (!r || r->status != 200) return nullptr;
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  // Waits until the cluster serves with `stages` ready stage nodes.
  bool wait_serving(int stages, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      auto j = cluster();
      if (j.is_object() && j.value("serving", false)) {
        int ready = 0;
        for (const auto& n : j["nodes"]) ready += n.value("state", "") == "ready" ? 1 : 0;
        if (ready >= stages) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Greedy completion through the HTTP API; returns the text (or "<error: ...>").
  std::string complete(const std::string& prompt, int max_tokens) {
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(120, 0);
    nlohmann::json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
    auto r = c.Post("/v1/completions", body.dump(), "application/json");
    if (!r) return "<error: no response>";
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (r->status != 200 || !j.is_object()) return "<error: " + std::to_string(r->status) + " " + r->body + ">";
    return j["choices"][0]["text"].get<std::string>();
  }

  std::string logs() {
    std::string s = "--- coordinator\n" + coordinator_.read_log();
    for (size_t i = 0; i < workers_.size(); ++i) s += "--- w" + std::to_string(i + 1) + "\n" + workers_[i].read_log();
    return s;
  }

 private:
  int wait_port(const std::string& pattern) {
    const std::regex re(pattern);
    for (int i = 0; i < 300; ++i) {
      std::smatch m;
      const std::string log = coordinator_.read_log();
      if (std::regex_search(log, m, re)) return std::stoi(m[1]);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "coordinator did not report its port:\n" << coordinator_.read_log();
    return 0;
  }

  fs::path dir_;
  std::string secret_;
  Process coordinator_;
  std::vector<Process> workers_;
  int peer_port_ = 0, http_port_ = 0;
};

}  // namespace zen::test
