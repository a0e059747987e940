// Starts real zen-node processes on 127.0.0.1 for end-to-end tests: a coordinator (ports
// chosen by the OS, read back from its log) and N workers, each with its own data folder.
// Nodes can be killed, stopped (SIGSTOP) and continued, restarted, the coordinator too (on
// the same ports, so the workers find it again).
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "engine/generate.h"
#include "engine/synth.h"
#include "engine/tokenizer.h"
#include "transport/keys.h"

namespace zen::test {

namespace fs = std::filesystem;

inline std::string zen_node_binary() { return std::string(ZEN_BINARY_DIR) + "/bin/zen-node"; }

// Nodes may still be writing when a test ends (they stop when the cluster object goes away):
// clean up without failing the test. ZEN_KEEP_TEST_DIRS=1 keeps the folders (and the logs).
inline void remove_later(const fs::path& d) {
  if (std::getenv("ZEN_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  fs::remove_all(d, ec);
}

inline fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("zen-e2e-" + std::to_string(::getpid()) + "-" + name);
  std::error_code ec;
  fs::remove_all(d, ec);
  fs::create_directories(d);
  return d;
}

// What one process produces: greedy tokens after `prompt_ids`, the end-of-generation token that
// stops the coordinator left out.
inline std::vector<int32_t> single_node_tokens(const std::string& model_path, const std::vector<int32_t>& prompt_ids, int n) {
  auto model = engine::Model::load(model_path);
  auto tok = engine::Tokenizer::from_gguf(model->file().gguf());
  engine::ContextParams cp;
  cp.n_threads = 1;
  cp.n_ctx = 512;
  engine::Context ctx(model, cp);
  engine::GenerateParams gp;
  gp.n_predict = n;
  gp.sampler.temperature = 0;
  gp.is_stop = [&](int32_t id) { return tok->is_eog(id); };
  std::vector<int32_t> out = engine::generate(ctx, 0, prompt_ids, gp, nullptr);
  if (!out.empty() && tok->is_eog(out.back())) out.pop_back();
  return out;
}

// The same for a text prompt (with BOS), decoded.
inline std::string single_node_text(const std::string& model_path, const std::string& prompt, int n) {
  auto tok = engine::Tokenizer::from_gguf(engine::Model::load(model_path)->file().gguf());
  const std::vector<int32_t> out = single_node_tokens(model_path, tok->encode(prompt, true, false), n);
  // The API streams text: bytes that never complete a character become U+FFFD, as here.
  engine::StreamDecoder dec(*tok);
  std::string text;
  for (int32_t id : out) text += dec.push(id);
  return text + dec.flush();
}

inline std::string synth_model(const fs::path& dir, int n_layer, int n_embd = 256, int n_ff = 512,
                               engine::Mix mix = engine::Mix::Q8_0) {
  engine::SynthParams p;
  p.n_layer = n_layer;
  p.n_embd = n_embd;
  p.n_ff = n_ff;
  p.n_head = 8;
  p.n_head_kv = 2;
  p.n_vocab = 320;
  p.n_ctx = 256;
  p.mix = mix;
  p.threads = 2;
  const std::string path = (dir / "model.gguf").string();
  engine::write_synth_model(p, path);
  return path;
}

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
  void signal(int sig) const {
    if (pid > 0) ::kill(pid, sig);
  }
  void kill(int sig = SIGTERM) {
    if (pid <= 0) return;
    ::kill(pid, sig);
    ::kill(pid, SIGCONT);  // a stopped process handles SIGTERM only once continued
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

// One streamed completion: the text as it arrives and the number of chunks so far.
struct Stream {
  std::atomic<int> chunks{0};
  std::atomic<bool> done{false};
  std::string text;  // complete once done; "<error: ...>" when the request failed
};

class LocalCluster {
 public:
  // `split`: forced layers per stage ("" = planned). Workers are named w1..wN. `node_args`
  // go to every node (coordinator and workers), e.g. heartbeat settings.
  LocalCluster(const std::string& model, int workers, const std::string& split, const fs::path& dir,
               std::vector<std::string> extra_coordinator_args = {}, bool no_discovery = true,
               std::vector<std::string> node_args = {})
      : dir_(dir), node_args_(std::move(node_args)) {
    fs::create_directories(dir);
    secret_ = (dir / "secret").string();
    if (!fs::exists(secret_)) transport::write_cluster_secret_file(secret_, transport::generate_cluster_secret());
    coord_args_ = {zen_node_binary(), "--role", "coordinator", "--name", "coord", "--listen", "127.0.0.1:0", "--http",
                   "127.0.0.1:0", "--model", model, "--cluster-secret-file", secret_, "--data-dir", (dir / "coord").string(),
                   "-t", "1"};
    if (no_discovery) coord_args_.push_back("--no-discovery");
    if (!split.empty()) coord_args_.insert(coord_args_.end(), {"--layer-split", split});
    coord_args_.insert(coord_args_.end(), extra_coordinator_args.begin(), extra_coordinator_args.end());
    coord_args_.insert(coord_args_.end(), node_args_.begin(), node_args_.end());
    start_coordinator();
    workers_.resize(static_cast<size_t>(workers));
    for (int i = 0; i < workers; ++i) start_worker(i);
  }

  void start_worker(int i, const std::vector<std::string>& extra = {}) {
    const std::string name = "w" + std::to_string(i + 1);
    std::vector<std::string> args = {zen_node_binary(), "--role", "worker", "--name", name, "--listen", "127.0.0.1:0",
                                     "--peer", "127.0.0.1:" + std::to_string(peer_port_), "--cluster-secret-file",
                                     secret_, "--data-dir", (dir_ / name).string(), "--no-discovery", "-t", "1"};
    args.insert(args.end(), node_args_.begin(), node_args_.end());
    args.insert(args.end(), extra.begin(), extra.end());
    workers_[static_cast<size_t>(i)].start(args, dir_ / (name + ".log"));
  }

  // Kills the coordinator (SIGKILL: no goodbye to anyone) and starts a new one on the same
  // ports, with a log of its own.
  void restart_coordinator() {
    coordinator_.kill(SIGKILL);
    coord_args_[6] = "127.0.0.1:" + std::to_string(peer_port_);  // --listen
    coord_args_[8] = "127.0.0.1:" + std::to_string(http_port_);  // --http
    ++coord_starts_;
    start_coordinator();
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

  // zen_requests_active from the coordinator's /metrics (-1 when it does not answer).
  int requests_active() {
    httplib::Client c("127.0.0.1", http_port_);
    auto r = c.Get("/metrics");
    if (!r || r->status != 200) return -1;
    const std::string key = "\nzen_requests_active ";
    const size_t at = r->body.find(key);
    return at == std::string::npos ? -1 : std::atoi(r->body.c_str() + at + key.size());
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

  // Streamed completion, greedy unless `params` (merged into the body) say otherwise; fills
  // `s` as chunks arrive (call on a thread of its own).
  void stream(const std::string& prompt, int max_tokens, Stream& s, const nlohmann::json& params = nlohmann::json::object()) {
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(120, 0);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    nlohmann::json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", true}};
    body.update(params);
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    std::string buf, text, error;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      buf.append(data, n);
      for (size_t end; (end = buf.find("\n\n")) != std::string::npos; buf.erase(0, end + 2)) {
        const std::string event = buf.substr(0, end);
        if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
        auto j = nlohmann::json::parse(event.substr(6), nullptr, false);
        if (!j.is_object() || j.contains("error")) {
          error = event;
          continue;
        }
        text += j["choices"][0].value("text", "");
        ++s.chunks;
      }
      return true;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    if (!c.send(req, res, err)) error = "no response (" + httplib::to_string(err) + ")";
    else if (res.status != 200) error = std::to_string(res.status) + " " + res.body;
    s.text = error.empty() ? text : "<error: " + error + ">";
    s.done = true;
  }

  std::string logs() {
    std::string s;
    for (int i = 0; i <= coord_starts_; ++i) s += "--- coordinator\n" + read_file(coord_log(i));
    for (size_t i = 0; i < workers_.size(); ++i) s += "--- w" + std::to_string(i + 1) + "\n" + workers_[i].read_log();
    return s;
  }

 private:
  fs::path coord_log(int start) const {
    return dir_ / (start == 0 ? std::string("coord.log") : "coord-" + std::to_string(start + 1) + ".log");
  }
  static std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  void start_coordinator() {
    coordinator_.start(coord_args_, coord_log(coord_starts_));
    peer_port_ = wait_port(R"(listening for nodes on 127\.0\.0\.1:(\d+))");
    http_port_ = wait_port(R"(HTTP API on http://127\.0\.0\.1:(\d+))");
  }
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
  std::vector<std::string> node_args_, coord_args_;
  int coord_starts_ = 0;
  Process coordinator_;
  std::vector<Process> workers_;
  int peer_port_ = 0, http_port_ = 0;
};

}  // namespace zen::test
