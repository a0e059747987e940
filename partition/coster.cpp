// Input validation and the O(1) cost questions behind predict() and the planner.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "partition/cost_internal.h"

namespace zen::partition {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("partition: " + what); }

bool finite_nonneg(double x) { return std::isfinite(x) && x >= 0; }

uint64_t checked_add(uint64_t a, uint64_t b, const char* what) {
  uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) fail(std::string(what) + " overflows 64 bits");
  return r;
}

uint64_t checked_mul(uint64_t a, uint64_t b, const char* what) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail(std::string(what) + " overflows 64 bits");
  return r;
}

std::string device_label(const Cluster& c, int d) {
  return "device " + std::to_string(d) + " (" + c.devices[static_cast<size_t>(d)].name + ")";
}

}  // namespace

Link link_between(const Cluster& c, int from, int to) {
  const int n = static_cast<int>(c.devices.size());
  if (from < 0 || from >= n || to < 0 || to >= n) fail("link between devices out of range");
  if (from == to || c.links.empty()) return Link{0, std::numeric_limits<double>::infinity(), 0};
  return c.links[static_cast<size_t>(from)][static_cast<size_t>(to)];
}

std::vector<Link> hidden_route(const Cluster& c, int from, int to) {
  if (from == to) return {};
  if (c.relay_via_coordinator && from != c.coordinator && to != c.coordinator)
    return {link_between(c, from, c.coordinator), link_between(c, c.coordinator, to)};
  return {link_between(c, from, to)};
}

double message_busy_s(const Link& link, uint64_t payload_bytes) {
  // Lost packets are sent again, so a lossy link carries 1 / (1 - loss) times the bytes.
  const double bytes = static_cast<double>(payload_bytes + kMessageOverheadBytes);
  return bytes / link.bandwidth_bytes_s / (1.0 - link.loss);
}

double message_s(const Link& link, uint64_t payload_bytes) {
  if (link.latency_s == 0 && std::isinf(link.bandwidth_bytes_s)) return 0;
  double t = link.latency_s + message_busy_s(link, payload_bytes);
  if (link.loss > 0) {
    // A message is late when any of its packets is lost. The last packet of a message has no
    // successor to trigger fast retransmit, so recovery waits for a tail-loss probe (about two
    // round trips, at least 10 ms) and then one more round trip for the resend.
    const double bytes = static_cast<double>(payload_bytes + kMessageOverheadBytes);
    const double packets = std::ceil(bytes / kPacketPayloadBytes);
    const double p_late = 1.0 - std::pow(1.0 - link.loss, packets);
    const double rtt = 2 * link.latency_s;
    t += p_late * (std::max(2 * rtt, 0.010) + rtt);
  }
  return t;
}

uint64_t usable_bytes(const Device& d, const PlanOptions& o) {
  const double usable = std::floor(static_cast<double>(d.mem_bytes) * (1.0 - o.mem_reserve_frac));
  return usable <= 0 ? 0 : static_cast<uint64_t>(usable);
}

namespace detail {

void validate(const ModelCost& m, const Cluster& c, const PlanOptions& o) {
  if (m.layers.empty()) fail("the model has no layers");
  if (m.layers.size() > 10000) fail("the model has more than 10000 layers");
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (!finite_nonneg(m.layers[i].flops_per_token))
      fail("layer " + std::to_string(i) + " has a negative or non-finite flops_per_token");
  }
  if (!finite_nonneg(m.head_flops_per_token)) fail("head_flops_per_token is negative or non-finite");
  if (m.hidden_bytes_per_token > (1ull << 32)) fail("hidden_bytes_per_token is implausibly large (> 4 GiB)");

  const size_t n = c.devices.size();
  if (n == 0) fail("the cluster has no devices");
  if (n > 256) fail("the cluster has more than 256 devices");
  for (size_t d = 0; d < n; ++d) {
    const Device& dev = c.devices[d];
    const std::string who = device_label(c, static_cast<int>(d));
    if (!(std::isfinite(dev.mem_bw_gbs) && dev.mem_bw_gbs > 0)) fail(who + ": mem_bw_gbs must be > 0");
    if (!(std::isfinite(dev.flops) && dev.flops > 0)) fail(who + ": flops must be > 0");
    if (!finite_nonneg(dev.overhead_s)) fail(who + ": overhead_s must be >= 0");
  }
  if (c.coordinator < 0 || static_cast<size_t>(c.coordinator) >= n)
    fail("coordinator " + std::to_string(c.coordinator) + " is not a device index");
  if (!c.links.empty()) {
    if (c.links.size() != n) fail("links must be empty or one row per device");
    for (size_t i = 0; i < n; ++i) {
      if (c.links[i].size() != n) fail("links row " + std::to_string(i) + " must have one entry per device");
      for (size_t j = 0; j < n; ++j) {
        if (i == j) continue;
        const Link& l = c.links[i][j];
        const std::string which = "link " + std::to_string(i) + "->" + std::to_string(j);
        if (!finite_nonneg(l.latency_s)) fail(which + ": latency_s must be >= 0");
        if (!(l.bandwidth_bytes_s > 0)) fail(which + ": bandwidth_bytes_s must be > 0");
        if (!(l.loss >= 0 && l.loss < 1)) fail(which + ": loss must be in [0, 1)");
      }
    }
  }

  if (o.prompt_tokens < 1) fail("prompt_tokens must be >= 1");
  if (o.gen_tokens < 0) fail("gen_tokens must be >= 0");
  if (o.n_streams < 1 || o.n_streams > 65536) fail("n_streams must be in [1, 65536]");
  if (o.prefill_chunk < 1) fail("prefill_chunk must be >= 1");
  if (!(o.mem_reserve_frac >= 0 && o.mem_reserve_frac < 1)) fail("mem_reserve_frac must be in [0, 1)");
  if (o.exact_max_devices < 0) fail("exact_max_devices must be >= 0");

  // Totals in 64 bits once, so that every slice below is known not to overflow.
  uint64_t weights = 0, kv = 0;
  for (const LayerCost& l : m.layers) {
    weights = checked_add(weights, l.weight_bytes, "total weight bytes");
    kv = checked_add(kv, l.kv_bytes_per_token, "total KV bytes per token");
  }
  const uint64_t mult = checked_mul(o.kv_tokens, static_cast<uint64_t>(o.n_streams), "kv_tokens x n_streams");
  uint64_t total = checked_add(weights, checked_mul(kv, mult, "KV cache bytes"), "model memory");
  total = checked_add(total, m.embed_bytes, "model memory");
  total = checked_add(total, m.head_bytes, "model memory");
  checked_add(total, o.stage_overhead_bytes, "model memory");
  double flops = m.head_flops_per_token;
  for (const LayerCost& l : m.layers) flops += l.flops_per_token;
  if (weights + m.head_bytes == 0 && flops == 0) fail("the model's layers have neither weight bytes nor FLOPs");
}

void validate_slice(const Cluster& c, int n_layers, int device, int first, int end, const std::string& which) {
  if (device < 0 || static_cast<size_t>(device) >= c.devices.size())
    fail(which + "device " + std::to_string(device) + " is not in the cluster");
  if (first < 0 || end <= first || end > n_layers)
    fail(which + "layer range [" + std::to_string(first) + ", " + std::to_string(end) + ") is empty or outside the model's " +
         std::to_string(n_layers) + " layers");
}

void validate_stages(const ModelCost& m, const Cluster& c, const std::vector<Stage>& stages) {
  if (stages.empty()) fail("a plan needs at least one stage");
  const int n_layers = static_cast<int>(m.layers.size());
  std::vector<bool> used(c.devices.size(), false);
  int next = 0;
  for (size_t i = 0; i < stages.size(); ++i) {
    const Stage& s = stages[i];
    const std::string which = "stage " + std::to_string(i);
    if (s.first_layer != next)
      fail(which + " starts at layer " + std::to_string(s.first_layer) + ", expected " + std::to_string(next));
    validate_slice(c, n_layers, s.device, s.first_layer, s.end_layer, which + ": ");
    if (used[static_cast<size_t>(s.device)]) fail(which + ": " + device_label(c, s.device) + " holds two stages");
    used[static_cast<size_t>(s.device)] = true;
    next = s.end_layer;
  }
  if (next != n_layers)
    fail("the stages end at layer " + std::to_string(next) + " but the model has " + std::to_string(n_layers));
}

Coster::Coster(const ModelCost& m, const Cluster& c, const PlanOptions& o) : model_(m), cluster_(c), opts_(o) {
  validate(m, c, o);
  n_layers_ = static_cast<int>(m.layers.size());
  weight_prefix_.assign(m.layers.size() + 1, 0);
  kv_prefix_.assign(m.layers.size() + 1, 0);
  flops_prefix_.assign(m.layers.size() + 1, 0);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    weight_prefix_[i + 1] = weight_prefix_[i] + m.layers[i].weight_bytes;
    kv_prefix_[i + 1] = kv_prefix_[i] + m.layers[i].kv_bytes_per_token;
    flops_prefix_[i + 1] = flops_prefix_[i] + m.layers[i].flops_per_token;
  }
  kv_multiplier_ = o.kv_tokens * static_cast<uint64_t>(o.n_streams);
  decode_context_ = o.prompt_tokens + 0.5 * o.gen_tokens;

  const size_t n = c.devices.size();
  usable_.resize(n);
  for (size_t d = 0; d < n; ++d) usable_[d] = usable_bytes(c.devices[d], o);
  hidden1_.assign(n * n, 0);
  hidden_busy1_.assign(n * n, 0);
  token1_.assign(n * n, 0);
  for (int a = 0; a < static_cast<int>(n); ++a) {
    for (int b = 0; b < static_cast<int>(n); ++b) {
      hidden1_[pair(a, b)] = hidden_hop_s(a, b, 1);
      hidden_busy1_[pair(a, b)] = hidden_busy_s(a, b, 1);
      token1_[pair(a, b)] = token_hop_s(a, b, 1);
    }
  }
}

uint64_t Coster::stage_mem(int first, int end) const {
  const bool embed = first == 0, head = end == n_layers_;
  uint64_t bytes = weight_prefix_[static_cast<size_t>(end)] - weight_prefix_[static_cast<size_t>(first)];
  if (embed) bytes += model_.embed_bytes;
  if (head) bytes += model_.head_bytes;
  if (embed && head && model_.tied_embeddings) bytes -= std::min(model_.embed_bytes, model_.head_bytes);
  bytes += (kv_prefix_[static_cast<size_t>(end)] - kv_prefix_[static_cast<size_t>(first)]) * kv_multiplier_;
  return bytes + opts_.stage_overhead_bytes;
}

StepTerms Coster::step_terms(int d, int first, int end, int batch) const {
  const Device& dev = device(d);
  const bool head = end == n_layers_;
  // Weights are read once for the whole batch; each sequence reads its own KV cache.
  double bytes = static_cast<double>(weight_prefix_[static_cast<size_t>(end)] - weight_prefix_[static_cast<size_t>(first)]);
  if (head) bytes += static_cast<double>(model_.head_bytes);
  const double kv = static_cast<double>(kv_prefix_[static_cast<size_t>(end)] - kv_prefix_[static_cast<size_t>(first)]);
  bytes += batch * kv * decode_context_;
  double flops = flops_prefix_[static_cast<size_t>(end)] - flops_prefix_[static_cast<size_t>(first)];
  if (head) flops += model_.head_flops_per_token;
  return StepTerms{bytes / (dev.mem_bw_gbs * 1e9), batch * flops / dev.flops, dev.overhead_s};
}

double Coster::prefill_s(int d, int first, int end, int tokens) const {
  const Device& dev = device(d);
  const bool head = end == n_layers_;
  // One pass over the weights for the whole chunk; only its last position goes through the head.
  double bytes = static_cast<double>(weight_prefix_[static_cast<size_t>(end)] - weight_prefix_[static_cast<size_t>(first)]);
  double flops = tokens * (flops_prefix_[static_cast<size_t>(end)] - flops_prefix_[static_cast<size_t>(first)]);
  if (head) {
    bytes += static_cast<double>(model_.head_bytes);
    flops += model_.head_flops_per_token;
  }
  return std::max(bytes / (dev.mem_bw_gbs * 1e9), flops / dev.flops) + dev.overhead_s;
}

double Coster::hidden_hop_s(int from, int to, int tokens) const {
  double t = 0;  // the legs one after another
  for (const Link& l : hidden_route(cluster_, from, to))
    t += message_s(l, model_.hidden_bytes_per_token * static_cast<uint64_t>(tokens));
  return t;
}

double Coster::hidden_busy_s(int from, int to, int tokens) const {
  double t = 0;  // each leg is its own link: the busiest one limits the rate
  for (const Link& l : hidden_route(cluster_, from, to))
    t = std::max(t, message_busy_s(l, model_.hidden_bytes_per_token * static_cast<uint64_t>(tokens)));
  return t;
}

double Coster::token_hop_s(int from, int to, int tokens) const {
  return message_s(link_between(cluster_, from, to), kTokenBytes * static_cast<uint64_t>(tokens));
}

double Coster::token_busy_s(int from, int to, int tokens) const {
  if (from == to) return 0;
  return message_busy_s(link_between(cluster_, from, to), kTokenBytes * static_cast<uint64_t>(tokens));
}

}  // namespace detail
}  // namespace zen::partition
