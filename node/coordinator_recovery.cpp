// Coordinator: nodes leaving and joining. A stage node that leaves (its link closed, or silent
// for heartbeat.failure_timeout) suspends every request in flight; the coordinator re-plans
// over the nodes left and, once each stage of the new plan is loaded, every request resumes:
// its KV caches are rebuilt from its prompt and the tokens sampled so far, and its sampler
// continues where it was (start() sends both). A node that joins is planned in when the
// requests in flight finish, or once it has stayed connected for heartbeat.failure_timeout (a
// node that flaps does not move requests back and forth); they then resume the same way.
#include <algorithm>

#include "node/coordinator.h"
#include "node/coordinator_internal.h"
#include "node/peer.h"

namespace zen::node {

namespace {
std::string ms_since(std::chrono::steady_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t).count();
  return std::to_string(ms) + " ms";
}
}  // namespace

void Coordinator::on_node_gone(const std::string& node, const std::string& reason) {
  auto it = nodes_.find(node);
  const bool was_stage = it->second->stage >= 0;
  nodes_.erase(it);
  dirty_ = true;
  log_line(cfg_.name, "node " + node + " left: " + reason);
  {
    std::lock_guard<std::mutex> lk(mu_);
    counters_.stage_reports.erase(node);
  }
  if (!was_stage) return;
  if (!lost_at_) lost_at_ = std::chrono::steady_clock::now();
  serving_ = false;
  if (!requests_.empty())
    log_line(cfg_.name, std::to_string(requests_.size()) + " requests in flight wait for a new plan");
  replan();
}

void Coordinator::on_node_joined(const std::string& node) {
  if (requests_.empty() || !serving_) return replan();
  if (replan_pending_) return;
  // Under the requests in flight the plan is improved once the newcomer has proven stable for a
  // failure timeout (each request then pauses for the new stages to load and its KV to rebuild).
  replan_pending_ = true;
  replan_due_ = std::chrono::steady_clock::now() + cfg_.failure_timeout;
  log_line(cfg_.name, "node " + node + " is planned in when the " + std::to_string(requests_.size()) +
                          " requests in flight finish (at most " + format_duration(cfg_.failure_timeout) + ")");
}

void Coordinator::suspend_all() {
  waiting_.clear();
  for (auto& [id, r] : requests_) {  // by id: the order they were submitted in
    r->running = false;
    r->pass_rows = 0;  // its pass in flight is lost; the time until it resumes is not a pass's cost
    waiting_.push_back(id);
  }
}

void Coordinator::start_waiting() {
  served_ = true;
  size_t resumed = 0;
  for (uint64_t id : waiting_)
    if (auto it = requests_.find(id); it != requests_.end() && !it->second->tokens.empty()) ++resumed;
  const std::string loaded = " (its stages loaded in " + ms_since(planned_at_) + ")";
  if (lost_at_) {
    log_line(cfg_.name, "recovered: plan " + std::to_string(plan_.plan_id) + " serving " + ms_since(*lost_at_) +
                            " after a stage node was lost" + loaded + "; resuming " + std::to_string(resumed) + " of " +
                            std::to_string(waiting_.size()) + " waiting requests");
    lost_at_.reset();
  } else if (resumed) {
    log_line(cfg_.name, "resuming " + std::to_string(resumed) + " requests on plan " + std::to_string(plan_.plan_id) + loaded);
  }
  admit();
}

void Coordinator::admit() {
  // limits.max_sequences: each running request holds a KV cache on every stage, which the
  // plan reserved memory for; the rest wait here in arrival order (resumed ones first).
  int running = 0;
  for (const auto& [id, r] : requests_) running += r->running ? 1 : 0;
  while (serving_ && !waiting_.empty() && running < std::max(1, cfg_.limits.max_sequences)) {
    const uint64_t id = waiting_.front();
    waiting_.pop_front();
    if (auto it = requests_.find(id); it != requests_.end() && !it->second->running) {
      start(*it->second);
      ++running;
    }
  }
}

void Coordinator::fail_all(const std::string& error) {
  std::vector<uint64_t> ids;
  for (auto& [id, r] : requests_) ids.push_back(id);
  for (uint64_t id : ids)
    if (auto it = requests_.find(id); it != requests_.end()) finish(*it->second, "error", error);
}

void Coordinator::become_unfit(const std::string& why) {
  if (unfit_ != why) log_line(cfg_.name, "the model does not fit the nodes present: " + why);
  unfit_ = why;
  serving_ = false;
  dirty_ = true;
  lost_at_.reset();
  // No plan: every node drops its stage (an empty plan makes it a spare) until enough return.
  local_.reset();
  local_model_.reset();
  local_stage_ = -1;
  ready_count_ = 0;
  stage_nodes_.clear();
  plan_.stages.clear();
  ++plan_.plan_id;
  for (auto& [name, n] : nodes_) {
    n->stage = -1;
    n->ready = false;
    send_wait(*n->link, plan_);
  }
  fail_all("the model does not fit the nodes present (" + why + "); the cluster serves again when enough nodes join");
}

}  // namespace zen::node
