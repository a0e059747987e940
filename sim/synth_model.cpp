// [model] synth = "...": a random-weight GGUF of a given shape for the harness and for sizing.
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include "engine/quant_mix.h"
#include "engine/synth.h"
#include "sim/topology.h"

namespace zen::sim {

namespace fs = std::filesystem;

namespace {

int64_t to_int(std::string_view v, std::string_view key, std::string_view name) {
  int64_t x = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x < 1 || x > (int64_t{1} << 24))
    throw TopologyError(std::string(key) + ": " + std::string(name) + " = '" + std::string(v) +
                        "' is not a whole number from 1 to 16777216");
  return x;
}

}  // namespace

fs::path synth_model_file(std::string_view spec, std::string_view key) {
  engine::SynthParams p;
  p.n_ctx = 4096;
  std::string type = "q4_K_M";
  for (size_t a = 0; a < spec.size();) {
    size_t b = spec.find(',', a);
    if (b == std::string_view::npos) b = spec.size();
    const std::string_view item = spec.substr(a, b - a);
    a = b + 1;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) throw TopologyError(std::string(key) + ": '" + std::string(item) + "' is not name=value");
    const std::string_view name = item.substr(0, eq), v = item.substr(eq + 1);
    if (name == "n_layer") p.n_layer = to_int(v, key, name);
    else if (name == "n_embd") p.n_embd = to_int(v, key, name);
    else if (name == "n_ff") p.n_ff = to_int(v, key, name);
    else if (name == "n_head") p.n_head = to_int(v, key, name);
    else if (name == "n_head_kv") p.n_head_kv = to_int(v, key, name);
    else if (name == "vocab") p.n_vocab = to_int(v, key, name);
    else if (name == "ctx") p.n_ctx = to_int(v, key, name);
    else if (name == "seed") p.seed = static_cast<uint64_t>(to_int(v, key, name));
    else if (name == "type") type = std::string(v);
    else
      throw TopologyError(std::string(key) + ": unknown name '" + std::string(name) +
                          "' (known: n_layer, n_embd, n_ff, n_head, n_head_kv, vocab, ctx, seed, type)");
  }
  const auto mix = engine::mix_from_name(type);
  if (!mix) throw TopologyError(std::string(key) + ": unknown type '" + type + "'");
  p.mix = *mix;
  if (p.n_embd % p.n_head != 0 || p.n_head % p.n_head_kv != 0)
    throw TopologyError(std::string(key) + ": n_embd must be a multiple of n_head, n_head a multiple of n_head_kv");
  // FNV-1a of the spec names the file: the same text is written once.
  uint64_t h = 1469598103934665603ull;
  for (char c : spec) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  char name[64];
  std::snprintf(name, sizeof name, "zen-sim-synth-%016llx.gguf", static_cast<unsigned long long>(h));
  const fs::path out = fs::temp_directory_path() / name;
  if (fs::exists(out)) return out;
  const fs::path tmp = out.string() + "." + std::to_string(::getpid()) + ".part";
  p.threads = 2;
  engine::write_synth_model(p, tmp.string());
  fs::rename(tmp, out);
  return out;
}

}  // namespace zen::sim
