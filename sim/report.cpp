// `zen sim` output: the plan table from partition::describe, then the simulation, as text or JSON.
#include <cmath>
#include <cstdio>

#include "sim/report.h"

namespace zen::sim {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += fmt("\\u%04x", c);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string num(double v) { return std::isfinite(v) ? fmt("%.6g", v) : "null"; }

}  // namespace

Report make_report(const Topology& t, const Workload& w) {
  Report r;
  r.topology = t;
  r.workload = w;
  const partition::PlanOptions o = plan_options_for(w);
  r.plan = partition::plan(t.model, t.cluster, o);
  if (r.plan.fits) {
    Workload one = w;
    one.requests = 1;
    r.single = simulate(t.model, t.cluster, r.plan.stages, one, o);
    r.loaded = w.requests == 1 ? r.single : simulate(t.model, t.cluster, r.plan.stages, w, o);
    r.warnings = physics_warnings(t.model, t.cluster, r.plan, r.single.single_tokens_per_s);
  }
  r.advice = advise(t.model, t.cluster, w);
  return r;
}

std::string format_text(const Report& r) {
  const auto& t = r.topology;
  std::string s = "model " + t.model_name + ": " + std::to_string(t.model.layers.size()) + " layers, " +
                  partition::format_bytes(t.model_bytes) + " of weights\n";
  s += "workload: " + std::to_string(r.workload.requests) + " request(s), " + std::to_string(r.workload.prompt_tokens) +
       " prompt + " + std::to_string(r.workload.gen_tokens) + " generated tokens each\n";
  s += partition::describe(r.plan, t.cluster);
  if (!r.plan.fits) {
    s += "DOES NOT FIT: " + r.plan.why_not + "\n";
  } else {
    s += "simulated, one request: TTFT " + fmt("%.3f", r.single.mean_ttft_s) + " s, " +
         fmt("%.2f", r.single.single_tokens_per_s) + " tokens/s\n";
    s += "simulated, " + std::to_string(r.workload.requests) + " requests: aggregate " +
         fmt("%.2f", r.loaded.aggregate_tokens_per_s) + " tokens/s (decode " + fmt("%.2f", r.loaded.decode_tokens_per_s) +
         ", all decoding " + fmt("%.2f", r.loaded.steady_tokens_per_s) + "), mean TTFT " + fmt("%.3f", r.loaded.mean_ttft_s) + " s, per stream " +
         fmt("%.2f", r.loaded.single_tokens_per_s) + " tokens/s, done in " + fmt("%.2f", r.loaded.makespan_s) + " s\n";
    const ResourceUse& b = r.loaded.resources[size_t(r.loaded.busiest)];
    s += "busiest: " + b.name + " (" + fmt("%.0f", b.utilization * 100) + " % busy, " + fmt("%.1f", b.mean_batch) +
         " sequences per pass)\n";
    for (const auto& w : r.warnings) s += "PHYSICS: " + w + "\n";
  }
  if (r.advice.empty()) {
    s += "advice: no single change tried (2x link bandwidth, 2x memory bandwidth, 2x memory) makes it fit\n";
  } else {
    s += "advice (single changes, best first):\n";
    for (size_t i = 0; i < r.advice.size() && i < 3; ++i) {
      const Advice& a = r.advice[i];
      s += "  " + a.change + ": " + fmt("%.2f", a.tokens_per_s) + " tokens/s" +
           (r.plan.fits ? " (" + fmt("%+.0f", a.gain * 100) + " %)" : std::string()) + ", aggregate " +
           fmt("%.2f", a.aggregate_tokens_per_s) + (a.plan_changed ? ", new plan" : "") + "\n";
    }
  }
  return s;
}

std::string format_json(const Report& r) {
  const auto& c = r.topology.cluster;
  std::string s = "{\"model\":" + quote(r.topology.model_name) + ",\"model_bytes\":" + std::to_string(r.topology.model_bytes);
  s += ",\"requests\":" + std::to_string(r.workload.requests) + ",\"prompt_tokens\":" +
       std::to_string(r.workload.prompt_tokens) + ",\"gen_tokens\":" + std::to_string(r.workload.gen_tokens);
  s += ",\"fits\":" + std::string(r.plan.fits ? "true" : "false") + ",\"why_not\":" + quote(r.plan.why_not);
  s += ",\"stages\":[";
  for (size_t i = 0; i < r.plan.stages.size(); ++i) {
    const auto& st = r.plan.stages[i];
    s += std::string(i ? "," : "") + "{\"device\":" + quote(c.devices[size_t(st.device)].name) +
         ",\"first_layer\":" + std::to_string(st.first_layer) + ",\"end_layer\":" + std::to_string(st.end_layer) +
         ",\"mem_bytes\":" + std::to_string(st.mem_bytes) + ",\"device_mem_bytes\":" +
         std::to_string(c.devices[size_t(st.device)].mem_bytes) + ",\"decode_s\":" + num(st.decode_s) + "}";
  }
  s += "]";
  if (r.plan.fits) {
    const ResourceUse& b = r.loaded.resources[size_t(r.loaded.busiest)];
    s += ",\"ttft_s\":" + num(r.single.mean_ttft_s) + ",\"tokens_per_s\":" + num(r.single.single_tokens_per_s) +
         ",\"aggregate_tokens_per_s\":" + num(r.loaded.aggregate_tokens_per_s) + ",\"decode_tokens_per_s\":" +
         num(r.loaded.decode_tokens_per_s) + ",\"steady_tokens_per_s\":" + num(r.loaded.steady_tokens_per_s) +
         ",\"loaded_mean_ttft_s\":" + num(r.loaded.mean_ttft_s) +
         ",\"predicted_tokens_per_s\":" + num(r.plan.prediction.tokens_per_s) + ",\"busiest\":" + quote(b.name) +
         ",\"busiest_utilization\":" + num(b.utilization);
  }
  s += ",\"warnings\":[";
  for (size_t i = 0; i < r.warnings.size(); ++i) s += std::string(i ? "," : "") + quote(r.warnings[i]);
  s += "],\"advice\":[";
  for (size_t i = 0; i < r.advice.size(); ++i) {
    const Advice& a = r.advice[i];
    s += std::string(i ? "," : "") + "{\"change\":" + quote(a.change) + ",\"tokens_per_s\":" + num(a.tokens_per_s) +
         ",\"aggregate_tokens_per_s\":" + num(a.aggregate_tokens_per_s) + ",\"gain\":" + num(a.gain) +
         ",\"plan_changed\":" + (a.plan_changed ? "true" : "false") + "}";
  }
  return s + "]}\n";
}

}  // namespace zen::sim
