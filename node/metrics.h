// Prometheus text exposition (format 0.0.4) for GET /metrics: families of counters and gauges
// with optional labels. Each family's HELP and TYPE lines are written once, before its first
// sample; the samples of a family must be written one after another; label values are escaped.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace zen::node {

class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void counter(const std::string& name, const std::string& help, double value, const Labels& labels = {});
  void gauge(const std::string& name, const std::string& help, double value, const Labels& labels = {});
  const std::string& str() const { return out_; }

 private:
  void sample(const std::string& name, const char* type, const std::string& help, double value, const Labels& labels);
  std::map<std::string, std::string> types_;  // family -> type, to catch a name used twice
  std::string out_;
  std::string last_;  // the family written last
};

}  // namespace zen::node
