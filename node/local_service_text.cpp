#include "node/local_service_text.h"

#include <algorithm>

namespace zen::node {

StopText::StopText(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string StopText::push(const std::string& piece) {
  if (stopped_) return {};
  held_ += piece;
  // Released text never ends inside a possible stop string, so one can only start in held_.
  size_t cut = std::string::npos;
  for (const auto& s : stops_) cut = std::min(cut, held_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = held_.substr(0, cut);
    held_.clear();
    return out;
  }
  size_t safe = held_.size();
  for (const auto& s : stops_)
    for (size_t k = std::min(s.size() - 1, held_.size()); k > 0; --k)
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        safe = std::min(safe, held_.size() - k);
        break;
      }
  std::string out = held_.substr(0, safe);
  held_.erase(0, safe);
  return out;
}

std::string StopText::finish() {
  std::string out;
  out.swap(held_);
  return stopped_ ? std::string() : out;
}

}  // namespace zen::node
