// Private to sim/harness*.cpp: zen-node processes for a topology and the HTTP workload.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "node/capabilities.h"
#include "partition/partition.h"
#include "sim/harness.h"

namespace zen::sim {

struct Completion {
  int tokens = 0;        // completion tokens the server reports
  double seconds = 0;    // request sent to answer received
};

class RunningCluster {
 public:
  // Starts the coordinator (forced onto `plan`'s split) and one worker per other stage device,
  // each shaping what it sends as its links in the topology say; waits until it serves.
  RunningCluster(const Topology& t, const partition::Plan& plan, const HarnessOptions& o);
  ~RunningCluster();  // stops every process, removes the work folder unless o.keep
  RunningCluster(const RunningCluster&) = delete;
  RunningCluster& operator=(const RunningCluster&) = delete;

  int n_vocab() const { return n_vocab_; }
  // One greedy completion (not streamed) of `prompt` token ids.
  Completion complete(const std::vector<int32_t>& prompt, int max_tokens);
  // `n` of them at once: every completion token and the wall time until the last one finished.
  std::pair<int, double> complete_concurrently(const std::vector<int32_t>& prompt, int max_tokens, int n);

 private:
  struct Proc {
    pid_t pid = -1;
    std::filesystem::path log;
  };
  void start(Proc& p, const std::vector<std::string>& args, const std::filesystem::path& log);
  int wait_port(const Proc& p, const std::string& pattern);
  std::string logs() const;

  std::filesystem::path dir_;
  bool keep_ = false;
  std::vector<Proc> procs_;  // coordinator first
  int http_port_ = 0;
  int n_vocab_ = 0;
};

}  // namespace zen::sim
