#include "engine/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>
#include <stdexcept>

#include "engine/unicode.h"

namespace zen::engine {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match state: the group-0 ovector and a JIT stack big enough for long runs of
// whitespace or letters (the default 32 KiB can run out on pathological inputs).
struct MatchState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* jit = nullptr;
  MatchState() {
    md = pcre2_match_data_create(16, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    jit = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
    if (!md || !mctx) throw std::bad_alloc();
    if (jit) pcre2_jit_stack_assign(mctx, nullptr, jit);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
  }
};

MatchState& match_state() {
  thread_local MatchState s;
  return s;
}

pcre2_code* as_code(void* p) { return static_cast<pcre2_code*>(p); }

}  // namespace

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  const uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts, &err,
                                   &err_off, nullptr);
  if (!code) {
    throw std::runtime_error("tokenizer regex does not compile at offset " + std::to_string(err_off) + ": " +
                             pcre2_message(err) + " (pattern: " + pattern_ + ")");
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(as_code(code_)); }

void Regex::find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const {
  MatchState& ms = match_state();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t pos = 0;
  while (pos < subject.size()) {
    const int rc = pcre2_match(as_code(code_), s, subject.size(), pos, PCRE2_NO_UTF_CHECK, ms.md, ms.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw std::runtime_error("tokenizer regex match failed: " + pcre2_message(rc) + " (pattern: " + pattern_ + ")");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ms.md);
    const size_t b = ov[0], e = ov[1];
    if (e <= b) {  // empty match: step over one character and search again
      pos = b + unicode::utf8_len(static_cast<uint8_t>(subject[b < subject.size() ? b : subject.size() - 1]));
      continue;
    }
    out.emplace_back(b, e);
    pos = e;
  }
}

std::string Regex::substitute_all(std::string_view subject, std::string_view replacement) const {
  const uint32_t opts = PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_EXTENDED | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH;
  std::string out(subject.size() + subject.size() / 2 + 16, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    PCRE2_SIZE out_len = out.size();
    const int rc = pcre2_substitute(as_code(code_), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
                                    opts, nullptr, nullptr, reinterpret_cast<PCRE2_SPTR>(replacement.data()),
                                    replacement.size(), reinterpret_cast<PCRE2_UCHAR*>(out.data()), &out_len);
    if (rc >= 0) {
      out.resize(out_len);
      return out;
    }
    if (rc != PCRE2_ERROR_NOMEMORY) throw std::runtime_error("regex substitution failed: " + pcre2_message(rc));
    out.assign(out_len + 1, '\0');
  }
  throw std::runtime_error("regex substitution: output size did not converge");
}

std::vector<std::pair<size_t, size_t>> regex_split(std::string_view text, const std::vector<Regex>& patterns) {
  std::vector<std::pair<size_t, size_t>> pieces, next, matches;
  if (text.empty()) return pieces;
  pieces.emplace_back(0, text.size());
  for (const Regex& re : patterns) {
    next.clear();
    for (const auto& [b, e] : pieces) {
      matches.clear();
      re.find_all(text.substr(b, e - b), matches);
      size_t pos = b;
      for (const auto& [mb, me] : matches) {
        if (b + mb > pos) next.emplace_back(pos, b + mb);  // the text before the match
        next.emplace_back(b + mb, b + me);
        pos = b + me;
      }
      if (pos < e) next.emplace_back(pos, e);
    }
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace zen::engine
