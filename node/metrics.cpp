#include "node/metrics.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace zen::node {

namespace {

std::string escape_label(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

bool valid_name(const std::string& n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

void MetricsText::counter(const std::string& name, const std::string& help, double value, const Labels& labels) {
  sample(name, "counter", help, value, labels);
}

void MetricsText::gauge(const std::string& name, const std::string& help, double value, const Labels& labels) {
  sample(name, "gauge", help, value, labels);
}

void MetricsText::sample(const std::string& name, const char* type, const std::string& help, double value,
                         const Labels& labels) {
  if (!valid_name(name)) throw std::invalid_argument("bad metric name '" + name + "'");
  auto it = types_.find(name);
  if (it == types_.end()) {
    types_.emplace(name, type);
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  } else if (it->second != type) {
    throw std::logic_error("metric " + name + " written as " + it->second + " and " + type);
  } else if (last_ != name) {
    throw std::logic_error("the samples of metric " + name + " are not together");
  }
  last_ = name;
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (!valid_name(labels[i].first)) throw std::invalid_argument("bad label name '" + labels[i].first + "'");
      if (i) out_ += ',';
      out_ += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
    }
    out_ += '}';
  }
  out_ += ' ' + format_value(value) + '\n';
}

}  // namespace zen::node
