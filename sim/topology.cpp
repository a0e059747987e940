// Topology TOML -> Cluster + ModelCost. Every table lists its keys; anything else is an error
// naming the key and its line.
#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "engine/model.h"
#include "node/config.h"
#include "node/model_cost.h"
#include "sim/topology.h"

namespace zen::sim {

namespace {

std::string where(std::string_view origin, const toml::source_region& src) {
  return std::string(origin) + ":" + std::to_string(src.begin.line) + ": ";
}

std::string get_string(const toml::node& n, const std::string& key) {
  if (const auto* s = n.as_string()) return s->get();
  throw TopologyError(key + ": expected a string");
}

double get_number(const toml::node& n, const std::string& key) {
  if (const auto* i = n.as_integer()) return static_cast<double>(i->get());
  if (const auto* f = n.as_floating_point()) return f->get();
  throw TopologyError(key + ": expected a number");
}

double get_positive(const toml::node& n, const std::string& key) {
  const double v = get_number(n, key);
  if (!(v > 0) || !std::isfinite(v)) throw TopologyError(key + ": must be a positive number");
  return v;
}

// A number with a unit suffix; returns value * the unit's factor.
double number_with_unit(std::string_view text, std::string_view key,
                        const std::vector<std::pair<std::string_view, double>>& units, const char* example) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.' || text[i] == 'e'))
    ++i;
  double v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + i, v);
  if (ec != std::errc() || p != text.data() + i || i == 0 || !std::isfinite(v) || v < 0)
    throw TopologyError(std::string(key) + ": '" + std::string(text) + "' is not a number with a unit such as " + example);
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (unit.empty() && v == 0) return 0;
  for (const auto& [name, factor] : units)
    if (unit == name) return v * factor;
  throw TopologyError(std::string(key) + ": unknown unit in '" + std::string(text) + "' (write e.g. " + example + ")");
}

using Setter = std::function<void(const toml::node&, const std::string&)>;
struct Field {
  const char* name;
  Setter set;
};

void read_table(const toml::table& t, const std::string& table, const std::vector<Field>& fields, std::string_view origin) {
  for (const auto& [k, v] : t) {
    const Field* f = nullptr;
    for (const Field& x : fields)
      if (k.str() == x.name) f = &x;
    const std::string key = table.empty() ? std::string(k.str()) : table + "." + std::string(k.str());
    if (f == nullptr) {
      std::string known;
      for (const Field& x : fields) known += std::string(known.empty() ? "" : ", ") + x.name;
      throw TopologyError(where(origin, k.source()) + "unknown key '" + key + "' (known keys: " + known + ")");
    }
    try {
      f->set(v, key);
    } catch (const TopologyError& e) {
      const std::string msg = e.what();
      if (msg.rfind(std::string(origin) + ":", 0) == 0) throw;
      throw TopologyError(where(origin, v.source()) + msg);
    } catch (const std::exception& e) {  // size parser, GGUF errors
      throw TopologyError(where(origin, v.source()) + e.what());
    }
  }
}

const toml::table& as_table(const toml::node& n, const std::string& key) {
  if (const auto* t = n.as_table()) return *t;
  throw TopologyError(key + ": expected a table");
}

const toml::array& as_array(const toml::node& n, const std::string& key) {
  if (const auto* a = n.as_array()) return *a;
  throw TopologyError(key + ": expected an array of tables ([[" + key + "]])");
}

struct LinkSpec {
  std::string a, b;
  partition::Link link;
  toml::source_region src;
};

void link_fields(std::vector<Field>& f, partition::Link& l) {
  f.push_back({"latency", [&l](const toml::node& n, const std::string& k) { l.latency_s = parse_seconds(get_string(n, k), k); }});
  f.push_back({"bandwidth", [&l](const toml::node& n, const std::string& k) {
                 l.bandwidth_bytes_s = parse_bandwidth(get_string(n, k), k);
                 if (l.bandwidth_bytes_s <= 0) throw TopologyError(k + ": must be > 0");
               }});
  f.push_back({"loss", [&l](const toml::node& n, const std::string& k) {
                 l.loss = get_number(n, k);
                 if (!(l.loss >= 0 && l.loss < 1)) throw TopologyError(k + ": must be in [0, 1)");
               }});
}

}  // namespace

double parse_bandwidth(std::string_view text, std::string_view key) {
  return number_with_unit(text, key,
                          {{"bit", 1.0 / 8}, {"kbit", 1e3 / 8}, {"Kbit", 1e3 / 8}, {"Mbit", 1e6 / 8}, {"Gbit", 1e9 / 8},
                           {"B/s", 1}, {"kB/s", 1e3}, {"MB/s", 1e6}, {"GB/s", 1e9}, {"KiB/s", 1024.0},
                           {"MiB/s", 1048576.0}, {"GiB/s", 1073741824.0}},
                          "\"100Mbit\" or \"12.5MB/s\"");
}

double parse_seconds(std::string_view text, std::string_view key) {
  return number_with_unit(text, key, {{"us", 1e-6}, {"ms", 1e-3}, {"s", 1}}, "\"2ms\" or \"500us\"");
}

Topology parse_topology(std::string_view text, std::string_view origin, const std::filesystem::path& base_dir) {
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw TopologyError(where(origin, e.source()) + "TOML syntax error: " + std::string(e.description()));
  }
  Topology t;
  std::string coordinator;
  std::optional<partition::Link> default_link;
  std::vector<LinkSpec> links;
  bool have_model = false;

  auto read_model = [&](const toml::node& n, const std::string& key) {
    std::string preset, quant = "q4_K_M", synth;
    std::filesystem::path path;
    read_table(as_table(n, key), key,
               {{"preset", [&](const toml::node& v, const std::string& k) { preset = get_string(v, k); }},
                {"quant", [&](const toml::node& v, const std::string& k) { quant = get_string(v, k); }},
                {"path", [&](const toml::node& v, const std::string& k) {
                   path = get_string(v, k);
                   if (path.is_relative() && !base_dir.empty()) path = base_dir / path;
                 }},
                {"synth", [&](const toml::node& v, const std::string& k) {
                   synth = get_string(v, k);
                   path = synth_model_file(synth, k);
                 }}},
               origin);
    if (preset.empty() == path.empty()) throw TopologyError(key + ": give exactly one of preset, path or synth");
    if (!preset.empty()) {
      t.model = preset_model(preset, quant);
      t.model_name = preset + " " + quant;
    } else {
      auto file = engine::GgufModelFile::open(path.string());
      const engine::Hparams hp = engine::Hparams::from_gguf(file->gguf());
      t.model = node::model_cost(file->gguf(), hp, 4);
      t.model_name = synth.empty() ? path.string() : "synthetic " + synth;
      t.model_path = path;
    }
    have_model = true;
  };

  auto read_device = [&](const toml::node& n, const std::string& key) {
    const toml::table& tab = as_table(n, key);
    partition::Device d;
    d.overhead_s = 50e-6;
    int threads = 0;
    if (const auto* p = tab.get("preset")) {
      try {
        d = preset_device(get_string(*p, key + ".preset"));
      } catch (const TopologyError& e) {
        throw TopologyError(where(origin, p->source()) + e.what());
      }
    }
    read_table(tab, key,
               {{"preset", [](const toml::node&, const std::string&) {}},
                {"name", [&](const toml::node& v, const std::string& k) { d.name = get_string(v, k); }},
                {"memory", [&](const toml::node& v, const std::string& k) {
                   d.mem_bytes = v.is_integer() ? static_cast<uint64_t>(get_positive(v, k))
                                                : node::parse_size(get_string(v, k), k);
                 }},
                {"mem_bw_gbs", [&](const toml::node& v, const std::string& k) { d.mem_bw_gbs = get_positive(v, k); }},
                {"flops", [&](const toml::node& v, const std::string& k) { d.flops = get_positive(v, k); }},
                {"threads", [&](const toml::node& v, const std::string& k) { threads = static_cast<int>(get_positive(v, k)); }},
                {"overhead", [&](const toml::node& v, const std::string& k) { d.overhead_s = parse_seconds(get_string(v, k), k); }}},
               origin);
    const std::string at = where(origin, n.source());
    if (d.name.empty()) throw TopologyError(at + key + ": a device needs a name");
    for (const auto& o : t.cluster.devices)
      if (o.name == d.name) throw TopologyError(at + key + ": device name '" + d.name + "' is used twice");
    if (d.mem_bytes == 0 || d.mem_bw_gbs <= 0 || d.flops <= 0)
      throw TopologyError(at + "device '" + d.name + "' needs memory, mem_bw_gbs and flops (or a preset)");
    t.cluster.devices.push_back(d);
    t.threads.push_back(threads);
  };

  read_table(root, "",
             {{"coordinator", [&](const toml::node& v, const std::string& k) { coordinator = get_string(v, k); }},
              {"model", read_model},
              {"device", [&](const toml::node& v, const std::string& k) {
                 const toml::array& a = as_array(v, k);
                 for (size_t i = 0; i < a.size(); ++i) read_device(*a.get(i), k);
               }},
              {"default_link", [&](const toml::node& v, const std::string& k) {
                 partition::Link l;
                 std::vector<Field> f;
                 link_fields(f, l);
                 read_table(as_table(v, k), k, f, origin);
                 if (l.bandwidth_bytes_s <= 0) throw TopologyError(k + ": needs a bandwidth");
                 default_link = l;
               }},
              {"link", [&](const toml::node& v, const std::string& k) {
                 const toml::array& a = as_array(v, k);
                 for (size_t i = 0; i < a.size(); ++i) {
                   LinkSpec s;
                   s.src = a.get(i)->source();
                   std::vector<Field> f;
                   link_fields(f, s.link);
                   f.push_back({"a", [&s](const toml::node& n, const std::string& kk) { s.a = get_string(n, kk); }});
                   f.push_back({"b", [&s](const toml::node& n, const std::string& kk) { s.b = get_string(n, kk); }});
                   read_table(as_table(*a.get(i), k), k, f, origin);
                   links.push_back(s);
                 }
               }}},
             origin);

  if (!have_model) throw TopologyError(std::string(origin) + ": no [model] table");
  auto& devs = t.cluster.devices;
  if (devs.empty()) throw TopologyError(std::string(origin) + ": no [[device]] entries");
  auto index_of = [&](const std::string& name, const std::string& what) -> int {
    for (size_t i = 0; i < devs.size(); ++i)
      if (devs[i].name == name) return static_cast<int>(i);
    throw TopologyError(what + "names no known device: '" + name + "'");
  };
  if (!coordinator.empty()) t.cluster.coordinator = index_of(coordinator, std::string(origin) + ": coordinator ");

  // Links: explicit pairs first, the default for every other pair; a missing pair is an error.
  const size_t n = devs.size();
  std::vector<std::vector<int>> set(n, std::vector<int>(n, 0));
  t.cluster.links.assign(n, std::vector<partition::Link>(n, partition::Link{}));
  for (const LinkSpec& s : links) {
    const std::string at = where(origin, s.src);
    const int a = index_of(s.a, at + "link: a ");
    const int b = index_of(s.b, at + "link: b ");
    if (a == b) throw TopologyError(at + "link: a and b are the same device '" + s.a + "'");
    if (s.link.bandwidth_bytes_s <= 0) throw TopologyError(at + "link " + s.a + "-" + s.b + ": needs a bandwidth");
    if (set[size_t(a)][size_t(b)]) throw TopologyError(at + "link " + s.a + "-" + s.b + " is given twice");
    set[size_t(a)][size_t(b)] = set[size_t(b)][size_t(a)] = 1;
    t.cluster.links[size_t(a)][size_t(b)] = t.cluster.links[size_t(b)][size_t(a)] = s.link;
  }
  for (size_t a = 0; a < n; ++a)
    for (size_t b = 0; b < n; ++b) {
      if (a == b || set[a][b]) continue;
      if (!default_link)
        throw TopologyError(std::string(origin) + ": no link between '" + devs[a].name + "' and '" + devs[b].name +
                            "' and no [default_link]");
      t.cluster.links[a][b] = *default_link;
    }
  t.model_bytes = model_weight_bytes(t.model);
  return t;
}

Topology load_topology(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TopologyError(path.string() + ": cannot open the topology file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_topology(ss.str(), path.string(), path.parent_path());
}

}  // namespace zen::sim
