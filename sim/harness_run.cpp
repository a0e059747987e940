// zen-node processes for the harness, and the HTTP workload against the coordinator.
#include "sim/harness_run.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "engine/model.h"
#include "transport/keys.h"

namespace zen::sim {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "PEERKEY:LATENCY_S:BYTES_PER_S:LOSS" for zen-node --bench-shape.
std::string shape_arg(const std::string& peer, const partition::Link& l) {
  char buf[160];
  std::snprintf(buf, sizeof buf, ":%.9g:%.9g:%.9g", l.latency_s, l.bandwidth_bytes_s, l.loss);
  return peer + buf;
}

}  // namespace

RunningCluster::RunningCluster(const Topology& t, const partition::Plan& plan, const HarnessOptions& o) : keep_(o.keep) {
  dir_ = o.work_dir.empty() ? fs::temp_directory_path() / ("zen-sim-run-" + std::to_string(::getpid())) : o.work_dir;
  fs::create_directories(dir_);
  const auto& devs = t.cluster.devices;
  const int coord = t.cluster.coordinator;
  // Every stage device runs a node; the coordinator always does (it owns the API).
  std::vector<int> nodes = {coord};
  for (const auto& s : plan.stages)
    if (s.device != coord) nodes.push_back(s.device);
  const fs::path secret = dir_ / "secret";
  if (!fs::exists(secret)) transport::write_cluster_secret_file(secret, transport::generate_cluster_secret());
  std::vector<std::string> keys;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const fs::path kf = dir_ / ("node" + std::to_string(i) + ".key");
    fs::remove(kf);
    const transport::KeyPair kp = transport::generate_keypair();
    transport::write_key_file(kf, kp);
    keys.push_back(transport::format_public_key(kp.public_key));
  }
  auto common = [&](size_t i, const std::string& name) {
    return std::vector<std::string>{o.zen_node.string(), "--name", name, "--listen", "127.0.0.1:0",
                                    "--cluster-secret-file", secret.string(), "--key-file",
                                    (dir_ / ("node" + std::to_string(i) + ".key")).string(), "--data-dir",
                                    (dir_ / name).string(), "--no-discovery", "-t", std::to_string(o.threads),
                                    "--max-sequences", std::to_string(std::max(8, o.workload.requests)), "--model",
                                    t.model_path.string()};
  };
  // The coordinator: the plan's split (its device order is itself, then workers by name: the
  // names below sort in plan order), and a shape per worker for what it sends to that worker.
  std::string split;
  for (const auto& s : plan.stages) split += (split.empty() ? "" : ",") + std::to_string(s.end_layer - s.first_layer);
  std::vector<std::string> names = {"c-" + devs[size_t(coord)].name};
  for (size_t i = 1; i < nodes.size(); ++i) names.push_back("n" + std::to_string(i) + "-" + devs[size_t(nodes[i])].name);
  std::vector<std::string> args = common(0, names[0]);
  args.insert(args.end(), {"--role", "coordinator", "--http", "127.0.0.1:0", "--layer-split", split});
  for (size_t i = 1; i < nodes.size(); ++i)
    args.insert(args.end(), {"--bench-shape", shape_arg(keys[i], partition::link_between(t.cluster, coord, nodes[i]))});
  procs_.resize(nodes.size());
  start(procs_[0], args, dir_ / "coordinator.log");
  const int peer_port = wait_port(procs_[0], R"(listening for nodes on 127\.0\.0\.1:(\d+))");
  http_port_ = wait_port(procs_[0], R"(HTTP API on http://127\.0\.0\.1:(\d+))");
  for (size_t i = 1; i < nodes.size(); ++i) {
    args = common(i, names[i]);
    args.insert(args.end(), {"--role", "worker", "--peer", "127.0.0.1:" + std::to_string(peer_port), "--bench-shape",
                             shape_arg("*", partition::link_between(t.cluster, nodes[i], coord))});
    start(procs_[i], args, dir_ / (names[i] + ".log"));
  }
  // Serving with every stage ready.
  httplib::Client c("127.0.0.1", http_port_);
  const auto end = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    if (Clock::now() > end) throw std::runtime_error("the cluster did not start serving within 120 s\n" + logs());
    auto res = c.Get("/cluster");
    if (res && res->status == 200) {
      const auto j = nlohmann::json::parse(res->body, nullptr, false);
      int ready = 0;
      if (j.is_object() && j.value("serving", false))
        for (const auto& n : j["nodes"]) ready += n.value("state", "") == "ready";
      if (ready >= static_cast<int>(plan.stages.size())) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // The vocabulary size, for prompt token ids in range.
  auto file = engine::GgufModelFile::open(t.model_path.string());
  n_vocab_ = static_cast<int>(engine::Hparams::from_gguf(file->gguf()).n_vocab);
}

RunningCluster::~RunningCluster() {
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it) {
    if (it->pid <= 0) continue;
    ::kill(it->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 150 && ::waitpid(it->pid, &st, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (::waitpid(it->pid, &st, WNOHANG) == 0) {
      ::kill(it->pid, SIGKILL);
      ::waitpid(it->pid, &st, 0);
    }
  }
  std::error_code ec;
  if (!keep_) fs::remove_all(dir_, ec);
}

void RunningCluster::start(Proc& p, const std::vector<std::string>& args, const fs::path& log) {
  p.log = log;
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + log.string());
  p.pid = ::fork();
  if (p.pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fd);
  if (p.pid < 0) throw std::runtime_error("cannot start " + args[0]);
}

int RunningCluster::wait_port(const Proc& p, const std::string& pattern) {
  const std::regex re(pattern);
  for (int i = 0; i < 1500; ++i) {  // 30 s: the first start hashes the model
    std::smatch m;
    const std::string log = read_file(p.log);
    if (std::regex_search(log, m, re)) return std::stoi(m[1]);
    int st = 0;
    if (::waitpid(p.pid, &st, WNOHANG) == p.pid) throw std::runtime_error("zen-node exited at start:\n" + log);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("zen-node did not report its port:\n" + read_file(p.log));
}

std::string RunningCluster::logs() const {
  std::string s;
  for (const Proc& p : procs_) s += "--- " + p.log.filename().string() + "\n" + read_file(p.log);
  return s;
}

Completion RunningCluster::complete(const std::vector<int32_t>& prompt, int max_tokens) {
  httplib::Client c("127.0.0.1", http_port_);
  c.set_read_timeout(600, 0);
  const nlohmann::json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
  const auto t0 = Clock::now();
  auto res = c.Post("/v1/completions", body.dump(), "application/json");
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!res) throw std::runtime_error("no answer from the coordinator\n" + logs());
  const auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != 200 || !j.is_object())
    throw std::runtime_error("the coordinator answered " + std::to_string(res->status) + ": " + res->body);
  return {j["usage"].value("completion_tokens", 0), s};
}

std::pair<int, double> RunningCluster::complete_concurrently(const std::vector<int32_t>& prompt, int max_tokens, int n) {
  std::vector<Completion> out(static_cast<size_t>(n));
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      try {
        out[size_t(i)] = complete(prompt, max_tokens);
      } catch (const std::exception& e) {
        errors[size_t(i)] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  int total = 0;
  for (int i = 0; i < n; ++i) {
    if (!errors[size_t(i)].empty()) throw std::runtime_error(errors[size_t(i)]);
    total += out[size_t(i)].tokens;
  }
  return {total, s};
}

}  // namespace zen::sim
