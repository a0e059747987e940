// A compiled PCRE2 pattern in UTF + Unicode-property mode, used for pre-tokenizer splits and
// for reading character properties out of PCRE2's Unicode tables.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zen::engine {

class Regex {
 public:
  // Throws std::runtime_error naming the pattern and PCRE2's message when it does not compile.
  // `$` matches only at the very end of the subject (as in ECMAScript and Rust's regex).
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&& o) noexcept : code_(o.code_), pattern_(std::move(o.pattern_)) { o.code_ = nullptr; }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  Regex& operator=(Regex&&) = delete;

  // Appends [begin, end) byte ranges (relative to `subject`) of every successive non-empty,
  // non-overlapping match. `subject` must be valid UTF-8. The subject is all the pattern
  // sees, so look-arounds and `$` stop at its edges.
  void find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const;

  // Runs a substitution over the whole subject (PCRE2 extended syntax, e.g. "\\L$0").
  std::string substitute_all(std::string_view subject, std::string_view replacement) const;

  const std::string& pattern() const { return pattern_; }

 private:
  void* code_ = nullptr;  // pcre2_code_8*
  std::string pattern_;
};

// Splits `text` (valid UTF-8) the way a sequence of Hugging Face "Split(Isolated)" regex
// pre-tokenizers does: each pattern runs over every piece left by the previous one; matches
// become pieces and so does the text between matches. Returns [begin, end) byte ranges.
std::vector<std::pair<size_t, size_t>> regex_split(std::string_view text, const std::vector<Regex>& patterns);

}  // namespace zen::engine
