// config.json -> hyperparameters and the {arch}.* GGUF metadata keys.
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "engine/convert_internal.h"

namespace zen::engine::convert {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw std::runtime_error(where + ": " + what);
}

bool has(const json& j, const char* k) { return j.contains(k) && !j[k].is_null(); }

int64_t get_int(const json& j, const char* k, const std::string& where, std::optional<int64_t> dflt = std::nullopt) {
  if (!has(j, k)) {
    if (dflt) return *dflt;
    fail(where, std::string("missing '") + k + "'");
  }
  if (!j[k].is_number_integer()) fail(where, std::string("'") + k + "' is not an integer");
  const int64_t v = j[k].get<int64_t>();
  if (v <= 0 || v > (int64_t{1} << 31)) fail(where, std::string("'") + k + "' = " + std::to_string(v) + " is out of range");
  return v;
}

double get_float(const json& j, const char* k, const std::string& where, double dflt) {
  if (!has(j, k)) return dflt;
  if (!j[k].is_number()) fail(where, std::string("'") + k + "' is not a number");
  const double v = j[k].get<double>();
  if (!(v > 0) || !std::isfinite(v)) fail(where, std::string("'") + k + "' must be positive");
  return v;
}

bool get_bool(const json& j, const char* k, const std::string& where, bool dflt) {
  if (!has(j, k)) return dflt;
  if (!j[k].is_boolean()) fail(where, std::string("'") + k + "' is not true/false");
  return j[k].get<bool>();
}

int64_t token_id(const json& j, const char* k) {
  if (!has(j, k)) return -1;
  if (j[k].is_number_integer()) return j[k].get<int64_t>();
  if (j[k].is_array() && !j[k].empty() && j[k][0].is_number_integer()) return j[k][0].get<int64_t>();  // eos lists
  return -1;
}

}  // namespace

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  return j;
}

HfConfig parse_hf_config(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "not a JSON object");
  HfConfig c;
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].size() != 1 ||
      !j["architectures"][0].is_string())
    fail(where, "'architectures' must list exactly one architecture");
  c.hf_arch = j["architectures"][0].get<std::string>();
  if (c.hf_arch == "LlamaForCausalLM" || c.hf_arch == "MistralForCausalLM") c.arch = "llama";
  else if (c.hf_arch == "Qwen2ForCausalLM") c.arch = "qwen2";
  else if (c.hf_arch == "Qwen3ForCausalLM") c.arch = "qwen3";
  else
    fail(where, "unsupported architecture '" + c.hf_arch +
                    "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
  if (has(j, "_name_or_path") && j["_name_or_path"].is_string()) c.name = j["_name_or_path"].get<std::string>();

  c.n_vocab = get_int(j, "vocab_size", where);
  c.n_embd = get_int(j, "hidden_size", where);
  c.n_layer = get_int(j, "num_hidden_layers", where);
  c.n_head = get_int(j, "num_attention_heads", where);
  c.n_head_kv = get_int(j, "num_key_value_heads", where, c.n_head);
  c.n_ff = get_int(j, "intermediate_size", where);
  c.head_dim = get_int(j, "head_dim", where, c.n_embd / c.n_head);
  c.n_ctx = get_int(j, "max_position_embeddings", where, 2048);
  c.rms_eps = get_float(j, "rms_norm_eps", where, 1e-6);
  c.rope_theta = get_float(j, "rope_theta", where, 10000.0);
  c.tied = get_bool(j, "tie_word_embeddings", where, false);
  if (c.n_head % c.n_head_kv != 0) fail(where, "num_attention_heads must be a multiple of num_key_value_heads");
  if (c.head_dim % 2 != 0) fail(where, "the head dimension must be even");
  if (!has(j, "head_dim") && c.n_embd % c.n_head != 0) fail(where, "hidden_size is not a multiple of num_attention_heads");

  // Settings that change the math: accepted only with the values the engine implements.
  const std::string act = has(j, "hidden_act") && j["hidden_act"].is_string() ? j["hidden_act"].get<std::string>() : "silu";
  if (act != "silu") fail(where, "unsupported hidden_act '" + act + "' (supported: silu)");
  if (get_bool(j, "mlp_bias", where, false)) fail(where, "mlp_bias = true is not supported");
  if (c.arch != "qwen2" && get_bool(j, "attention_bias", where, false))
    fail(where, "attention_bias = true is not supported for " + c.hf_arch);
  if (get_bool(j, "use_sliding_window", where, false)) fail(where, "use_sliding_window = true is not supported");
  if (has(j, "partial_rotary_factor") && get_float(j, "partial_rotary_factor", where, 1.0) != 1.0)
    fail(where, "partial_rotary_factor other than 1 is not supported");
  if (has(j, "rope_scaling")) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) fail(where, "'rope_scaling' is not an object");
    std::string type = rs.contains("rope_type") && rs["rope_type"].is_string() ? rs["rope_type"].get<std::string>()
                       : rs.contains("type") && rs["type"].is_string()     ? rs["type"].get<std::string>()
                                                                           : "";
    if (type == "linear") c.rope_linear_factor = get_float(rs, "factor", where + " rope_scaling", 0.0);
    else if (type != "default")
      fail(where, "unsupported rope_scaling type '" + type + "' (supported: linear, default)");
    if (type == "linear" && c.rope_linear_factor <= 0) fail(where, "rope_scaling linear needs a positive factor");
  }
  c.bos = token_id(j, "bos_token_id");
  c.eos = token_id(j, "eos_token_id");
  c.pad = token_id(j, "pad_token_id");
  return c;
}

void write_hparams(GgufWriter& w, const HfConfig& c) {
  const std::string& a = c.arch;
  auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w.set_string("general.architecture", a);
  w.set_u32(a + ".context_length", u32(c.n_ctx));
  w.set_u32(a + ".embedding_length", u32(c.n_embd));
  w.set_u32(a + ".block_count", u32(c.n_layer));
  w.set_u32(a + ".feed_forward_length", u32(c.n_ff));
  w.set_u32(a + ".attention.head_count", u32(c.n_head));
  w.set_u32(a + ".attention.head_count_kv", u32(c.n_head_kv));
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_eps));
  w.set_f32(a + ".rope.freq_base", static_cast<float>(c.rope_theta));
  w.set_u32(a + ".vocab_size", u32(c.n_vocab));
  if (a == "llama") w.set_u32(a + ".rope.dimension_count", u32(c.head_dim));
  if (c.head_dim != c.n_embd / c.n_head || a == "qwen3") {
    w.set_u32(a + ".attention.key_length", u32(c.head_dim));
    w.set_u32(a + ".attention.value_length", u32(c.head_dim));
  }
  if (c.rope_linear_factor > 0) {
    w.set_string(a + ".rope.scaling.type", "linear");
    w.set_f32(a + ".rope.scaling.factor", static_cast<float>(c.rope_linear_factor));
  }
}

}  // namespace zen::engine::convert
