// Value parsers and formatters shared by the config file and the flags.
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "node/config.h"

namespace zen::node {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// 'text' (built by appending: GCC 12 warns falsely on "literal" + std::string).
std::string quoted(std::string_view text) {
  std::string q(1, '\'');
  q += text;
  q += '\'';
  return q;
}

[[noreturn]] void bad(std::string_view key, const std::string& msg) {
  throw ConfigError(std::string(key) + ": " + msg);
}

// Splits "1.5GiB" into a non-negative number and its unit (lower case).
std::pair<double, std::string> number_and_unit(std::string_view text, std::string_view key, const char* example) {
  const std::string_view t = trim(text);
  size_t i = 0;
  while (i < t.size() && (std::isdigit(static_cast<unsigned char>(t[i])) || t[i] == '.')) ++i;
  double value = 0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + i, value);
  if (i == 0 || ec != std::errc() || end != t.data() + i || !std::isfinite(value))
    bad(key, quoted(t) + " is not a number with a unit (e.g. " + std::string(example) + ")");
  return {value, lower(trim(t.substr(i)))};
}

}  // namespace

const char* role_name(Role r) { return r == Role::coordinator ? "coordinator" : "worker"; }

const char* activation_name(ActivationType t) {
  switch (t) {
    case ActivationType::f32: return "f32";
    case ActivationType::f16: return "f16";
    case ActivationType::bf16: return "bf16";
  }
  return "?";
}

std::string HostPort::str() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

uint64_t parse_size(std::string_view text, std::string_view key) {
  const auto [value, unit] = number_and_unit(text, key, "\"6GiB\", \"512MiB\"");
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1.0},          {"b", 1.0},          {"kib", 1024.0},     {"mib", 1048576.0},
      {"gib", 1073741824.0}, {"tib", 1099511627776.0}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}};
  for (const auto& [name, mult] : kUnits) {
    if (unit != name) continue;
    const double bytes = std::floor(value * mult);
    if (!(bytes < 18446744073709551616.0)) bad(key, quoted(trim(text)) + " is too large");
    if (unit.empty() || unit == "b") {
      if (value != std::floor(value)) bad(key, "a byte count must be a whole number");
    }
    return static_cast<uint64_t>(bytes);
  }
  bad(key, "unknown size unit '" + unit + "' (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)");
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view key) {
  const auto [value, unit] = number_and_unit(text, key, "\"1s\", \"500ms\"");
  double ms = 0;
  if (unit == "ms") ms = value;
  else if (unit == "s") ms = value * 1e3;
  else if (unit == "m" || unit == "min") ms = value * 6e4;
  else if (unit == "h") ms = value * 3.6e6;
  else if (unit.empty() && value == 0) ms = 0;
  else if (unit.empty()) bad(key, quoted(trim(text)) + " needs a unit (ms, s, m or h)");
  else bad(key, "unknown duration unit '" + unit + "' (use ms, s, m or h)");
  if (ms > 1e12) bad(key, quoted(trim(text)) + " is too long");
  if (ms != std::floor(ms)) bad(key, quoted(trim(text)) + " is not a whole number of milliseconds");
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

HostPort parse_host_port(std::string_view text, std::string_view key, uint16_t default_port) {
  const std::string_view t = trim(text);
  const std::string shown = quoted(t);
  if (t.empty()) bad(key, "empty address (expected host:port)");
  HostPort hp;
  std::string_view port_text;
  if (t.front() == '[') {
    const size_t close = t.find(']');
    if (close == std::string_view::npos) bad(key, shown + ": missing ']' after the IPv6 address");
    hp.host = std::string(t.substr(1, close - 1));
    const std::string_view rest = t.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') bad(key, shown + ": expected ':' after ']'");
      port_text = rest.substr(1);
      if (port_text.empty()) bad(key, shown + ": empty port");
    }
  } else {
    const size_t colon = t.rfind(':');
    if (colon != std::string_view::npos && t.find(':') != colon)
      bad(key, shown + ": write IPv6 addresses in brackets, e.g. [::1]:7700");
    if (colon == std::string_view::npos) {
      hp.host = std::string(t);
    } else {
      hp.host = std::string(t.substr(0, colon));
      port_text = t.substr(colon + 1);
      if (port_text.empty()) bad(key, shown + ": empty port");
    }
  }
  if (hp.host.empty()) bad(key, shown + ": empty host");
  for (char c : hp.host)
    if (std::isspace(static_cast<unsigned char>(c)) || c == '/' || c == '[' || c == ']')
      bad(key, shown + ": bad character in host");
  if (port_text.empty()) {
    if (default_port == 0) bad(key, shown + ": missing port (expected host:port)");
    hp.port = default_port;
    return hp;
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    bad(key, shown + ": port must be a number from 0 to 65535");
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

Role parse_role(std::string_view text, std::string_view key) {
  const std::string t = lower(trim(text));
  if (t == "coordinator") return Role::coordinator;
  if (t == "worker") return Role::worker;
  bad(key, quoted(trim(text)) + " is not a role (use coordinator or worker)");
}

ActivationType parse_activation_type(std::string_view text, std::string_view key) {
  const std::string t = lower(trim(text));
  if (t == "f32") return ActivationType::f32;
  if (t == "f16") return ActivationType::f16;
  if (t == "bf16") return ActivationType::bf16;
  bad(key, quoted(trim(text)) + " is not an activation type (use f32, f16 or bf16)");
}

std::vector<int> parse_layer_split(std::string_view text, std::string_view key) {
  std::vector<int> out;
  std::string_view rest = trim(text);
  if (rest.empty()) return out;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    int v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || v < 1)
      bad(key, quoted(item) + " is not a positive layer count (expected e.g. 4,4,3)");
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::string format_size(uint64_t bytes) {
  static const char* kUnit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024.0 && u < 6) {
    v /= 1024.0;
    ++u;
  }
  char buf[48];
  if (v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0f %s", v, kUnit[u]);
  else std::snprintf(buf, sizeof buf, "%.2f %s", v, kUnit[u]);
  return buf;
}

std::string format_duration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::filesystem::path default_data_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return std::filesystem::path(xdg) / "zen";
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] != '\0') return std::filesystem::path(home) / ".cache" / "zen";
  return std::filesystem::current_path() / ".zen-cache";
}

}  // namespace zen::node
