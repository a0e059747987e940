// The cost model: from stages to predicted token time, time to first token and aggregate throughput.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "partition/cost_internal.h"

namespace zen::partition {

namespace detail {

namespace {

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// One batch of g sequences once around the ring: coordinator -> stages -> coordinator.
double cycle_s(const Coster& k, const std::vector<Stage>& st, int g) {
  double t = k.token_hop_s(k.coordinator(), st.front().device, g);
  for (size_t i = 0; i < st.size(); ++i) {
    t += k.step_s(st[i].device, st[i].first_layer, st[i].end_layer, g);
    if (i + 1 < st.size()) t += k.hidden_hop_s(st[i].device, st[i + 1].device, g);
  }
  return t + k.token_hop_s(st.back().device, k.coordinator(), g);
}

// The longest time any one resource (a stage, or a link sending) is busy with a batch of g.
double busiest_s(const Coster& k, const std::vector<Stage>& st, int g) {
  double worst = std::max(k.token_busy_s(k.coordinator(), st.front().device, g),
                          k.token_busy_s(st.back().device, k.coordinator(), g));
  for (size_t i = 0; i < st.size(); ++i) {
    worst = std::max(worst, k.step_s(st[i].device, st[i].first_layer, st[i].end_layer, g));
    if (i + 1 < st.size()) worst = std::max(worst, k.hidden_busy_s(st[i].device, st[i + 1].device, g));
  }
  return worst;
}

std::string link_name(const Coster& k, int from, int to) {
  return "link " + k.device(from).name + "->" + k.device(to).name;
}

// The largest single term of the one-stream token time.
void find_bottleneck(const Coster& k, const std::vector<Stage>& st, Prediction& p) {
  double worst = -1;
  auto consider = [&](double t, int stage, std::string what) {
    if (t > worst) {
      worst = t;
      p.bottleneck_stage = stage;
      p.bottleneck = std::move(what);
    }
  };
  const int coord = k.coordinator();
  if (coord != st.front().device)
    consider(k.token_hop1(coord, st.front().device), 0, link_name(k, coord, st.front().device));
  for (size_t i = 0; i < st.size(); ++i) {
    const int stage = static_cast<int>(i);
    const StepTerms terms = k.step_terms(st[i].device, st[i].first_layer, st[i].end_layer, 1);
    const std::string& name = k.device(st[i].device).name;
    const char* what = terms.overhead_s > std::max(terms.memory_s, terms.compute_s) ? "step overhead on "
                       : terms.compute_s > terms.memory_s                          ? "compute on "
                                                                                   : "memory bandwidth on ";
    consider(terms.total(), stage, what + name);
    if (i + 1 < st.size()) {
      const int from = st[i].device, to = st[i + 1].device, c = k.coordinator();
      const bool relayed = hidden_route(k.cluster(), from, to).size() == 2;  // from -> coordinator -> to
      consider(k.hidden_hop1(from, to), stage,
               relayed ? link_name(k, from, c) + "->" + k.device(to).name : link_name(k, from, to));
    }
  }
  if (st.back().device != coord)
    consider(k.token_hop1(st.back().device, coord), static_cast<int>(st.size()) - 1,
             link_name(k, st.back().device, coord));
}

}  // namespace

Prediction predict_with(const Coster& k, const std::vector<Stage>& st) {
  const PlanOptions& o = k.options();
  Prediction p;
  p.prompt_tokens = o.prompt_tokens;
  p.n_streams = o.n_streams;

  // One stream: every stage and hop in turn, then the sampled token back to the coordinator.
  p.token_s = cycle_s(k, st, 1);
  p.tokens_per_s = 1.0 / p.token_s;

  // n streams in groups of g: each group needs a full cycle, and the busiest resource has to serve
  // every group once per cycle. Sequences of a group share one pass over each stage's weights.
  p.aggregate_tokens_per_s = 0;
  for (int g = 1; g <= o.n_streams; ++g) {
    const int groups = ceil_div(o.n_streams, g);
    const double period = std::max(cycle_s(k, st, g), groups * busiest_s(k, st, g));
    const double rate = o.n_streams / period;
    if (rate > p.aggregate_tokens_per_s * (1 + 1e-12)) {
      p.aggregate_tokens_per_s = rate;
      p.stream_batch = g;
    }
  }

  // Prompt: chunks of at most prefill_chunk tokens. The first chunk crosses the whole pipeline; each
  // later one adds the busiest resource's time. The last position's logits give the first token.
  const int chunks = ceil_div(o.prompt_tokens, o.prefill_chunk);
  const int chunk = ceil_div(o.prompt_tokens, chunks);
  double first_pass = k.token_hop_s(k.coordinator(), st.front().device, chunk);
  double per_chunk = k.token_busy_s(k.coordinator(), st.front().device, chunk);
  for (size_t i = 0; i < st.size(); ++i) {
    const double t = k.prefill_s(st[i].device, st[i].first_layer, st[i].end_layer, chunk);
    first_pass += t;
    per_chunk = std::max(per_chunk, t);
    if (i + 1 < st.size()) {
      first_pass += k.hidden_hop_s(st[i].device, st[i + 1].device, chunk);
      per_chunk = std::max(per_chunk, k.hidden_busy_s(st[i].device, st[i + 1].device, chunk));
    }
  }
  first_pass += k.token_hop_s(st.back().device, k.coordinator(), 1);
  p.ttft_s = first_pass + (chunks - 1) * per_chunk;
  p.prefill_tokens_per_s = o.prompt_tokens / p.ttft_s;

  find_bottleneck(k, st, p);
  return p;
}

Stage make_stage_with(const Coster& k, int device, int first_layer, int end_layer) {
  const PlanOptions& o = k.options();
  Stage s;
  s.device = device;
  s.first_layer = first_layer;
  s.end_layer = end_layer;
  s.embed = first_layer == 0;
  s.head = end_layer == k.n_layers();
  s.mem_bytes = k.stage_mem(first_layer, end_layer);
  s.decode_s = k.step_s(device, first_layer, end_layer, 1);
  const int chunks = ceil_div(o.prompt_tokens, o.prefill_chunk);
  const int chunk = ceil_div(o.prompt_tokens, chunks);
  s.prefill_s_per_token = chunks * k.prefill_s(device, first_layer, end_layer, chunk) / o.prompt_tokens;
  return s;
}

}  // namespace detail

Prediction predict(const ModelCost& m, const Cluster& c, const std::vector<Stage>& stages, const PlanOptions& o) {
  const detail::Coster k(m, c, o);
  detail::validate_stages(m, c, stages);
  return detail::predict_with(k, stages);
}

Stage make_stage(const ModelCost& m, const Cluster& c, int device, int first_layer, int end_layer,
                 const PlanOptions& o) {
  const detail::Coster k(m, c, o);
  detail::validate_slice(c, k.n_layers(), device, first_layer, end_layer);
  return detail::make_stage_with(k, device, first_layer, end_layer);
}

std::vector<Stage> make_stages(const ModelCost& m, const Cluster& c, const std::vector<int>& devices,
                               const std::vector<int>& layers_per_stage, const PlanOptions& o) {
  const detail::Coster k(m, c, o);
  if (devices.size() != layers_per_stage.size())
    throw std::invalid_argument("partition: " + std::to_string(devices.size()) + " devices but " +
                                std::to_string(layers_per_stage.size()) + " layer counts");
  std::vector<Stage> stages;
  int first = 0;
  for (size_t i = 0; i < devices.size(); ++i) {
    Stage s;
    s.device = devices[i];
    s.first_layer = first;
    s.end_layer = first + layers_per_stage[i];
    if (layers_per_stage[i] < 1 || s.end_layer > k.n_layers())
      throw std::invalid_argument("partition: layer count " + std::to_string(layers_per_stage[i]) + " for stage " +
                                  std::to_string(i) + " is < 1 or runs past the model's " +
                                  std::to_string(k.n_layers()) + " layers");
    stages.push_back(s);
    first = s.end_layer;
  }
  detail::validate_stages(m, c, stages);
  for (Stage& s : stages) s = detail::make_stage_with(k, s.device, s.first_layer, s.end_layer);
  return stages;
}

std::string memory_shortfall(const Cluster& c, const std::vector<Stage>& stages, const PlanOptions& o) {
  std::string out;
  for (const Stage& s : stages) {
    if (s.device < 0 || static_cast<size_t>(s.device) >= c.devices.size())
      throw std::invalid_argument("partition: stage device " + std::to_string(s.device) + " is not in the cluster");
    const Device& d = c.devices[static_cast<size_t>(s.device)];
    const uint64_t usable = usable_bytes(d, o);
    if (s.mem_bytes <= usable) continue;
    if (!out.empty()) out += "; ";
    out += d.name + " needs " + format_bytes(s.mem_bytes) + " for layers [" + std::to_string(s.first_layer) +
           ", " + std::to_string(s.end_layer) + ")" + (s.embed ? " + embeddings" : "") + (s.head ? " + head" : "") +
           " but has " + format_bytes(usable) + " usable: short by " + format_bytes(s.mem_bytes - usable);
  }
  return out;
}

double stage_step_s(const ModelCost& m, const Cluster& c, const Stage& s, int batch, const PlanOptions& o) {
  const detail::Coster k(m, c, o);
  detail::validate_slice(c, k.n_layers(), s.device, s.first_layer, s.end_layer);
  if (batch < 1) throw std::invalid_argument("partition: batch must be >= 1");
  return k.step_s(s.device, s.first_layer, s.end_layer, batch);
}

double stage_prefill_s(const ModelCost& m, const Cluster& c, const Stage& s, int tokens, const PlanOptions& o) {
  const detail::Coster k(m, c, o);
  detail::validate_slice(c, k.n_layers(), s.device, s.first_layer, s.end_layer);
  if (tokens < 1) throw std::invalid_argument("partition: tokens must be >= 1");
  return k.prefill_s(s.device, s.first_layer, s.end_layer, tokens);
}

}  // namespace zen::partition
