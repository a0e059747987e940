// zen-node config file: TOML -> NodeConfig. Every key is listed in one table per TOML
// table below; anything else is an error that names the key and its line.
#include <toml++/toml.h>

#include <functional>
#include <fstream>
#include <sstream>

#include "node/config.h"

namespace zen::node {

namespace {

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

[[noreturn]] void wrong_type(const std::string& key, const toml::node& n, const char* expected) {
  throw ConfigError(key + ": expected " + expected + ", got " + type_name(n));
}

std::string get_string(const toml::node& n, const std::string& key) {
  if (const auto* s = n.as_string()) return s->get();
  wrong_type(key, n, "a string");
}

bool get_bool(const toml::node& n, const std::string& key) {
  if (const auto* b = n.as_boolean()) return b->get();
  wrong_type(key, n, "true or false");
}

int64_t get_int(const toml::node& n, const std::string& key, int64_t lo, int64_t hi) {
  const auto* i = n.as_integer();
  if (i == nullptr) wrong_type(key, n, "an integer");
  const int64_t v = i->get();
  if (v < lo || v > hi)
    throw ConfigError(key + ": " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]");
  return v;
}

std::vector<std::string> get_strings(const toml::node& n, const std::string& key) {
  const auto* a = n.as_array();
  if (a == nullptr) wrong_type(key, n, "an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < a->size(); ++i) out.push_back(get_string(*a->get(i), key + "[" + std::to_string(i) + "]"));
  return out;
}

// Sizes: "6GiB" or a whole number of bytes.
uint64_t get_size(const toml::node& n, const std::string& key) {
  if (n.is_integer()) return static_cast<uint64_t>(get_int(n, key, 0, INT64_MAX));
  if (n.is_string()) return parse_size(get_string(n, key), key);
  wrong_type(key, n, "a size such as \"6GiB\" or a number of bytes");
}

std::chrono::milliseconds get_duration(const toml::node& n, const std::string& key) {
  if (n.is_string()) return parse_duration(get_string(n, key), key);
  wrong_type(key, n, "a duration such as \"1s\" or \"500ms\"");
}

// "~/x" -> $HOME/x; relative -> base/x (when base is set).
std::filesystem::path get_path(const toml::node& n, const std::string& key, const std::filesystem::path& base) {
  const std::string s = get_string(n, key);
  if (s.empty()) throw ConfigError(key + ": empty path");
  std::filesystem::path p;
  if (s == "~" || s.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || home[0] == '\0') throw ConfigError(key + ": cannot expand '~': HOME is not set");
    p = std::filesystem::path(home) / s.substr(s.size() > 1 ? 2 : 1);
  } else {
    p = s;
  }
  if (p.is_relative() && !base.empty()) p = base / p;
  return p.lexically_normal();
}

// An error that already says where it is (from a nested table).
struct LocatedError : ConfigError {
  using ConfigError::ConfigError;
};

using Setter = std::function<void(const toml::node&, const std::string& key)>;
struct Field {
  const char* name;
  Setter set;
};

std::string where(std::string_view origin, const toml::source_region& src) {
  return std::string(origin) + ":" + std::to_string(src.begin.line) + ": ";
}

// Applies each key of `table` through its field; unknown keys and bad values throw with the line.
void read_table(const toml::table& table, const std::string& prefix, const std::vector<Field>& fields,
                std::string_view origin) {
  for (const auto& [k, v] : table) {
    const std::string key = prefix + std::string(k.str());
    const Field* f = nullptr;
    for (const Field& x : fields)
      if (k.str() == x.name) f = &x;
    if (f == nullptr) {
      std::string known;
      for (const Field& x : fields) known += std::string(known.empty() ? "" : ", ") + x.name;
      throw LocatedError(where(origin, k.source()) + "unknown key '" + key + "'" +
                        (prefix.empty() ? "" : " in [" + prefix.substr(0, prefix.size() - 1) + "]") +
                        " (known keys: " + known + ")");
    }
    try {
      f->set(v, key);
    } catch (const LocatedError&) {
      throw;
    } catch (const ConfigError& e) {
      throw LocatedError(where(origin, v.source()) + e.what());
    }
  }
}

const toml::table& get_table(const toml::node& n, const std::string& key) {
  if (const auto* t = n.as_table()) return *t;
  wrong_type(key, n, "a table");
}

// TOML allows non-ASCII text only inside strings and comments. toml++ 3.3.0 reaches
// __builtin_unreachable() (undefined behaviour) when it asks whether some non-ASCII code
// points there are whitespace (U+00A1..U+0499, U+FB26..U+FEFE; found by fuzz_config), so
// such a character is refused here, with its line, before toml++ sees the text. A quote
// opens a string only where toml++ would read one: at the start of a key or a value, not
// inside a bare value token (toml++ scans those up to whitespace , ] } # or a newline).
void check_ascii_outside_strings(std::string_view t, std::string_view origin) {
  enum { plain, comment, basic, literal, ml_basic, ml_literal } state = plain;
  size_t line = 1;
  char prev = '\n';         // the last non-blank character outside strings and comments
  bool value = false;       // after '=' (or inside an array): values, not keys
  bool in_token = false;    // inside a bare value token
  std::string nest;         // open '[' and '{'
  auto run = [&](size_t i, char q) {  // how many q characters start at i
    size_t n = 0;
    while (i + n < t.size() && t[i + n] == q) ++n;
    return n;
  };
  auto refuse = [&](const char* where) {
    throw ConfigError(std::string(origin) + ":" + std::to_string(line) + ": TOML syntax error: a non-ASCII character " +
                      where);
  };
  // toml++ checks what follows a backslash for whitespace (a line-ending backslash skips
  // blanks and newlines), so a non-ASCII character there is refused too.
  auto escape_check = [&](size_t i) {
    size_t j = i + 1;
    while (j < t.size() && (t[j] == ' ' || t[j] == '\t' || t[j] == '\r' || t[j] == '\n')) ++j;
    if (j < t.size() && static_cast<unsigned char>(t[j]) >= 0x80) refuse("after a backslash");
  };
  for (size_t i = 0; i < t.size(); ++i) {
    const char ch = t[i];
    if (ch == '\n') ++line;
    switch (state) {
      case plain: {
        const bool blank = ch == ' ' || ch == '\t' || ch == '\r';
        if (blank || ch == ',' || ch == ']' || ch == '}' || ch == '#' || ch == '\n') in_token = false;
        if (ch == '#') {
          state = comment;
          break;
        }
        if (static_cast<unsigned char>(ch) >= 0x80) refuse("outside a string or comment");
        if (blank) break;
        const bool at_start = !in_token && std::string_view("\n=[,{.").find(prev) != std::string_view::npos;
        if ((ch == '"' || ch == '\'') && at_start) {
          const size_t n = run(i, ch);
          if (n >= 3) {
            state = ch == '"' ? ml_basic : ml_literal;
            i += 2;
          } else if (n == 2) {
            ++i;  // an empty string
          } else {
            state = ch == '"' ? basic : literal;
          }
          prev = '"';
          break;
        }
        if (!in_token) {
          if (ch == '[' || ch == '{') {
            nest += ch;
            if (ch == '{') value = false;
          } else if (ch == ']' || ch == '}') {
            if (!nest.empty()) nest.pop_back();
          } else if (ch == ',') {
            value = !nest.empty() && nest.back() == '[';
          } else if (ch == '\n') {
            value = !nest.empty() && nest.back() == '[';
          } else if (ch == '=' && !value) {
            value = true;
          } else if (value) {
            in_token = true;
          }
        }
        prev = ch;
        break;
      }
      case comment:
        if (ch == '\n') {
          state = plain;
          prev = '\n';
          value = !nest.empty() && nest.back() == '[';
        }
        break;
      case basic:
      case literal:
        if (state == basic && ch == '\\') escape_check(i);
        if (state == basic && ch == '\\' && i + 1 < t.size() && t[i + 1] != '\n') ++i;
        else if (ch == (state == basic ? '"' : '\'') || ch == '\n') state = plain;
        break;
      case ml_basic:
      case ml_literal:
        if (state == ml_basic && ch == '\\') escape_check(i);
        if (state == ml_basic && ch == '\\' && i + 1 < t.size()) {
          if (t[i + 1] == '\n') ++line;
          ++i;
        } else if (ch == (state == ml_basic ? '"' : '\'')) {
          const size_t n = run(i, ch);
          if (n >= 3) state = plain;  // up to two quotes before the closing three belong to the text
          i += n - 1;
        }
        break;
    }
  }
}

}  // namespace

NodeConfig parse_config(std::string_view toml_text, std::string_view origin, const std::filesystem::path& base_dir) {
  toml::table root;
  check_ascii_outside_strings(toml_text, origin);
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    throw ConfigError(where(origin, e.source()) + "TOML syntax error: " + std::string(e.description()));
  }
  NodeConfig c;
  const auto& base = base_dir;
  const std::vector<Field> discovery = {
      {"enabled", [&](auto& n, auto& k) { c.discovery.enabled = get_bool(n, k); }},
      {"port", [&](auto& n, auto& k) { c.discovery.port = static_cast<uint16_t>(get_int(n, k, 1, 65535)); }},
      {"interval", [&](auto& n, auto& k) { c.discovery.interval = get_duration(n, k); }},
      {"targets", [&](auto& n, auto& k) { c.discovery.targets = get_strings(n, k); }},
  };
  const std::vector<Field> limits = {
      {"max_request_bytes", [&](auto& n, auto& k) { c.limits.max_request_bytes = get_size(n, k); }},
      {"max_sequences", [&](auto& n, auto& k) { c.limits.max_sequences = static_cast<int>(get_int(n, k, 1, 4096)); }},
      {"max_batch_tokens", [&](auto& n, auto& k) { c.limits.max_batch_tokens = static_cast<int>(get_int(n, k, 1, 65536)); }},
      {"request_timeout", [&](auto& n, auto& k) { c.limits.request_timeout = get_duration(n, k); }},
      {"step_timeout", [&](auto& n, auto& k) { c.limits.step_timeout = get_duration(n, k); }},
  };
  const std::vector<Field> speculative = {
      {"mode", [&](auto& n, auto& k) { c.speculative.mode = get_string(n, k); }},
      {"draft_model", [&](auto& n, auto& k) { c.speculative.draft_model = get_path(n, k, base); }},
      {"max_draft", [&](auto& n, auto& k) { c.speculative.max_draft = static_cast<int>(get_int(n, k, 1, 32)); }},
  };
  const std::vector<Field> heartbeat = {
      {"interval", [&](auto& n, auto& k) { c.heartbeat_interval = get_duration(n, k); }},
      {"failure_timeout", [&](auto& n, auto& k) { c.failure_timeout = get_duration(n, k); }},
  };
  const std::vector<Field> top = {
      {"name", [&](auto& n, auto& k) { c.name = get_string(n, k); }},
      {"role", [&](auto& n, auto& k) { c.role = parse_role(get_string(n, k), k); }},
      {"listen", [&](auto& n, auto& k) { c.listen = parse_host_port(get_string(n, k), k); }},
      {"http",
       [&](auto& n, auto& k) {
         const std::string s = get_string(n, k);
         c.http = s.empty() ? std::nullopt : std::optional<HostPort>(parse_host_port(s, k));
       }},
      {"data_dir", [&](auto& n, auto& k) { c.data_dir = get_path(n, k, base); }},
      {"key_file", [&](auto& n, auto& k) { c.key_file = get_path(n, k, base); }},
      {"cluster_secret",
       [&](auto& n, auto& k) {
         c.cluster_secret = get_string(n, k);
         try {
           (void)transport::parse_cluster_secret(c.cluster_secret);  // message never echoes the value
         } catch (const std::exception& e) {
           throw ConfigError(k + ": " + e.what() + " (make one with `zen keygen`)");
         }
       }},
      {"cluster_secret_file", [&](auto& n, auto& k) { c.cluster_secret_file = get_path(n, k, base); }},
      {"model", [&](auto& n, auto& k) { c.model = get_path(n, k, base); }},
      {"peers",
       [&](auto& n, auto& k) {
         c.peers.clear();
         for (const std::string& s : get_strings(n, k)) c.peers.push_back(parse_host_port(s, k));
       }},
      {"allow",
       [&](auto& n, auto& k) {
         c.allow.clear();
         for (const std::string& s : get_strings(n, k)) {
           try {
             c.allow.push_back(transport::parse_public_key(s));
           } catch (const std::exception& e) {
             throw ConfigError(k + ": '" + s + "': " + e.what());
           }
         }
       }},
      {"memory", [&](auto& n, auto& k) { c.memory_budget = get_size(n, k); }},
      {"threads", [&](auto& n, auto& k) { c.threads = static_cast<int>(get_int(n, k, 0, 4096)); }},
      {"activation_type",
       [&](auto& n, auto& k) { c.activation_type = parse_activation_type(get_string(n, k), k); }},
      {"api_keys", [&](auto& n, auto& k) { c.api_keys = get_strings(n, k); }},
      {"layer_split",
       [&](auto& n, auto& k) {
         const auto* a = n.as_array();
         if (a == nullptr) wrong_type(k, n, "an array of layer counts");
         c.layer_split.clear();
         for (size_t i = 0; i < a->size(); ++i)
           c.layer_split.push_back(static_cast<int>(get_int(*a->get(i), k + "[" + std::to_string(i) + "]", 1, 1 << 20)));
       }},
      {"discovery", [&](auto& n, auto& k) { read_table(get_table(n, k), "discovery.", discovery, origin); }},
      {"limits", [&](auto& n, auto& k) { read_table(get_table(n, k), "limits.", limits, origin); }},
      {"heartbeat", [&](auto& n, auto& k) { read_table(get_table(n, k), "heartbeat.", heartbeat, origin); }},
      {"speculative", [&](auto& n, auto& k) { read_table(get_table(n, k), "speculative.", speculative, origin); }},
  };
  read_table(root, "", top, origin);
  return c;
}

NodeConfig load_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot open config file " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw ConfigError("cannot read config file " + path.string());
  std::filesystem::path base = std::filesystem::absolute(path).parent_path();
  return parse_config(ss.str(), path.string(), base);
}

}  // namespace zen::node
