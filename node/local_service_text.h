// Generated text against stop strings, for anything that streams a generation (LocalService;
// the coordinator and `zen chat` keep the same rule and could share this): text is released
// as soon as it is final, a tail that could still grow into a stop string is held back, and
// at the first stop string the text is cut just before it.
#pragma once
#include <string>
#include <vector>

namespace zen::node {

class StopText {
 public:
  explicit StopText(std::vector<std::string> stops);
  // Adds newly decoded text; returns the part that is now final. After a stop string,
  // stopped() is true and nothing more is released.
  std::string push(const std::string& piece);
  // The generation ended without a stop string: the held-back tail is final too.
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;  // non-empty strings
  std::string held_;                // not yet released; no stop string starts before it
  bool stopped_ = false;
};

}  // namespace zen::node
