#include "tests/convert/hf_checkpoint.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

#include "kernels/half.h"

namespace zen::test {

using engine::StDType;
using nlohmann::json;

namespace {

float round_to(StDType t, float v) {
  if (t == StDType::F16) return kernels::fp16_to_fp32(kernels::fp32_to_fp16(v));
  if (t == StDType::BF16) return kernels::bf16_to_fp32(kernels::fp32_to_bf16(v));
  return v;
}

std::vector<std::byte> encode(StDType t, const std::vector<float>& v) {
  std::vector<std::byte> out(v.size() * engine::st_dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == StDType::F32) {
      std::memcpy(&out[i * 4], &v[i], 4);
    } else {
      const uint16_t h = t == StDType::F16 ? kernels::fp32_to_fp16(v[i]) : kernels::fp32_to_bf16(v[i]);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

void rms_norm(const double* x, const std::vector<float>& w, int64_t n, double eps, double* out) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * r * w[static_cast<size_t>(i)];
}

// y[rows] = W[rows][cols] x (+ b)
void linear(const std::vector<float>& W, const double* x, int64_t rows, int64_t cols, double* y, const std::vector<float>* b = nullptr) {
  for (int64_t r = 0; r < rows; ++r) {
    double acc = b ? (*b)[static_cast<size_t>(r)] : 0.0;
    const float* row = &W[static_cast<size_t>(r * cols)];
    for (int64_t c = 0; c < cols; ++c) acc += static_cast<double>(row[c]) * x[c];
    y[r] = acc;
  }
}

// rotate_half RoPE on one head: dimension i pairs with i + hd/2, angle pos * theta^(-2i/hd).
void rope_half(double* x, int64_t hd, int pos, double theta) {
  const int64_t half = hd / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double ang = pos * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
    const double c = std::cos(ang), s = std::sin(ang);
    const double a = x[i], b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
  }
}

}  // namespace

std::vector<HfTensorSpec> hf_tensor_list(const HfSpec& s) {
  std::vector<HfTensorSpec> t;
  const int64_t E = s.n_embd, QD = s.n_head * s.hd(), KD = s.n_head_kv * s.hd();
  const float in_e = 1.0f / std::sqrt(static_cast<float>(E));
  t.push_back({"model.embed_tokens.weight", {s.n_vocab, E}, 1.0f, 0});
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string p = "model.layers." + std::to_string(il) + ".";
    t.push_back({p + "input_layernorm.weight", {E}, 0.1f, 1});
    t.push_back({p + "self_attn.q_proj.weight", {QD, E}, in_e, 0});
    t.push_back({p + "self_attn.k_proj.weight", {KD, E}, in_e, 0});
    t.push_back({p + "self_attn.v_proj.weight", {KD, E}, in_e, 0});
    if (s.qkv_bias()) {
      t.push_back({p + "self_attn.q_proj.bias", {QD}, 0.1f, 0});
      t.push_back({p + "self_attn.k_proj.bias", {KD}, 0.1f, 0});
      t.push_back({p + "self_attn.v_proj.bias", {KD}, 0.1f, 0});
    }
    if (s.qk_norm()) {
      t.push_back({p + "self_attn.q_norm.weight", {s.hd()}, 0.1f, 1});
      t.push_back({p + "self_attn.k_norm.weight", {s.hd()}, 0.1f, 1});
    }
    t.push_back({p + "self_attn.o_proj.weight", {E, QD}, 1.0f / std::sqrt(static_cast<float>(QD)), 0});
    t.push_back({p + "post_attention_layernorm.weight", {E}, 0.1f, 1});
    t.push_back({p + "mlp.gate_proj.weight", {s.n_ff, E}, in_e, 0});
    t.push_back({p + "mlp.up_proj.weight", {s.n_ff, E}, in_e, 0});
    t.push_back({p + "mlp.down_proj.weight", {E, s.n_ff}, 1.0f / std::sqrt(static_cast<float>(s.n_ff)), 0});
  }
  t.push_back({"model.norm.weight", {E}, 0.1f, 1});
  if (!s.tied) t.push_back({"lm_head.weight", {s.n_vocab, E}, in_e, 0});
  return t;
}

HfWeights random_weights(const HfSpec& s) {
  HfWeights w;
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const HfTensorSpec& t : hf_tensor_list(s)) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = round_to(s.dtype, t.offset + t.scale * nd(rng));
    w.shape[t.name] = t.shape;
    w.data[t.name] = std::move(v);
  }
  return w;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

void write_config(const fs::path& dir, const HfSpec& s) {
  json c = {{"architectures", {s.hf_arch}},
            {"hidden_act", "silu"},
            {"hidden_size", s.n_embd},
            {"intermediate_size", s.n_ff},
            {"max_position_embeddings", s.n_ctx},
            {"num_attention_heads", s.n_head},
            {"num_hidden_layers", s.n_layer},
            {"num_key_value_heads", s.n_head_kv},
            {"rms_norm_eps", s.rms_eps},
            {"rope_theta", s.rope_theta},
            {"rope_scaling", nullptr},
            {"tie_word_embeddings", s.tied},
            {"torch_dtype", s.dtype == StDType::F32 ? "float32" : s.dtype == StDType::F16 ? "float16" : "bfloat16"},
            {"vocab_size", s.n_vocab},
            {"bos_token_id", 1},
            {"eos_token_id", 2}};
  if (s.head_dim) c["head_dim"] = s.head_dim;
  if (s.hf_arch == "Qwen2ForCausalLM") c["use_sliding_window"] = false;
  write_text(dir / "config.json", c.dump(2));
}

void write_checkpoint(const fs::path& dir, const HfSpec& s, const HfWeights& w) {
  fs::create_directories(dir);
  write_config(dir, s);
  std::vector<std::vector<engine::StWriteTensor>> shards(static_cast<size_t>(std::max(1, s.shards)));
  size_t i = 0;
  json weight_map = json::object();
  for (const auto& [name, v] : w.data) {
    const size_t k = i++ % shards.size();
    shards[k].push_back({name, s.dtype, w.shape.at(name), encode(s.dtype, v)});
    char fname[64];
    std::snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    weight_map[name] = fname;
  }
  for (size_t k = 0; k < shards.size(); ++k) {
    char fname[64];
    std::snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    const std::string file = shards.size() == 1 ? "model.safetensors" : fname;
    const auto bytes = engine::write_safetensors(shards[k], {{"format", "pt"}});
    write_text(dir / file, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  if (shards.size() > 1) write_text(dir / "model.safetensors.index.json", json{{"metadata", json::object()}, {"weight_map", weight_map}}.dump(2));
}

std::vector<float> hf_forward(const HfSpec& s, const HfWeights& w, const std::vector<int32_t>& tokens) {
  const int64_t E = s.n_embd, HD = s.hd(), QD = s.n_head * HD, KD = s.n_head_kv * HD, FF = s.n_ff;
  const int64_t T = static_cast<int64_t>(tokens.size()), group = s.n_head / s.n_head_kv;
  std::vector<double> x(static_cast<size_t>(T * E));
  const auto& emb = w.at("model.embed_tokens.weight");
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < E; ++i) x[static_cast<size_t>(t * E + i)] = emb[static_cast<size_t>(tokens[t] * E + i)];
  std::vector<double> h(E), q(T * QD), k(T * KD), v(T * KD), att(QD), o(E), g(FF), u(FF), scores(T);
  for (int64_t il = 0; il < s.n_layer; ++il) {
    const std::string p = "model.layers." + std::to_string(il) + ".";
    for (int64_t t = 0; t < T; ++t) {
      double* xt = &x[static_cast<size_t>(t * E)];
      rms_norm(xt, w.at(p + "input_layernorm.weight"), E, s.rms_eps, h.data());
      const bool b = s.qkv_bias();
      linear(w.at(p + "self_attn.q_proj.weight"), h.data(), QD, E, &q[t * QD], b ? &w.at(p + "self_attn.q_proj.bias") : nullptr);
      linear(w.at(p + "self_attn.k_proj.weight"), h.data(), KD, E, &k[t * KD], b ? &w.at(p + "self_attn.k_proj.bias") : nullptr);
      linear(w.at(p + "self_attn.v_proj.weight"), h.data(), KD, E, &v[t * KD], b ? &w.at(p + "self_attn.v_proj.bias") : nullptr);
      for (int64_t hh = 0; hh < s.n_head; ++hh) {
        double* qh = &q[t * QD + hh * HD];
        if (s.qk_norm()) rms_norm(qh, w.at(p + "self_attn.q_norm.weight"), HD, s.rms_eps, qh);
        rope_half(qh, HD, static_cast<int>(t), s.rope_theta);
      }
      for (int64_t hh = 0; hh < s.n_head_kv; ++hh) {
        double* kh = &k[t * KD + hh * HD];
        if (s.qk_norm()) rms_norm(kh, w.at(p + "self_attn.k_norm.weight"), HD, s.rms_eps, kh);
        rope_half(kh, HD, static_cast<int>(t), s.rope_theta);
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t hh = 0; hh < s.n_head; ++hh) {  // causal softmax attention, GQA
        const int64_t kv = hh / group;
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < HD; ++i) d += q[t * QD + hh * HD + i] * k[j * KD + kv * HD + i];
          scores[j] = d / std::sqrt(static_cast<double>(HD));
          mx = std::max(mx, scores[j]);
        }
        for (int64_t j = 0; j <= t; ++j) sum += (scores[j] = std::exp(scores[j] - mx));
        for (int64_t i = 0; i < HD; ++i) {
          double acc = 0;
          for (int64_t j = 0; j <= t; ++j) acc += scores[j] / sum * v[j * KD + kv * HD + i];
          att[hh * HD + i] = acc;
        }
      }
      double* xt = &x[static_cast<size_t>(t * E)];
      linear(w.at(p + "self_attn.o_proj.weight"), att.data(), E, QD, o.data());
      for (int64_t i = 0; i < E; ++i) xt[i] += o[i];
      rms_norm(xt, w.at(p + "post_attention_layernorm.weight"), E, s.rms_eps, h.data());
      linear(w.at(p + "mlp.gate_proj.weight"), h.data(), FF, E, g.data());
      linear(w.at(p + "mlp.up_proj.weight"), h.data(), FF, E, u.data());
      for (int64_t i = 0; i < FF; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      linear(w.at(p + "mlp.down_proj.weight"), g.data(), E, FF, o.data());
      for (int64_t i = 0; i < E; ++i) xt[i] += o[i];
    }
  }
  const auto& head = s.tied ? emb : w.at("lm_head.weight");
  std::vector<float> logits(static_cast<size_t>(T * s.n_vocab));
  std::vector<double> y(s.n_vocab);
  for (int64_t t = 0; t < T; ++t) {
    rms_norm(&x[static_cast<size_t>(t * E)], w.at("model.norm.weight"), E, s.rms_eps, h.data());
    linear(head, h.data(), s.n_vocab, E, y.data());
    for (int64_t i = 0; i < s.n_vocab; ++i) logits[static_cast<size_t>(t * s.n_vocab + i)] = static_cast<float>(y[i]);
  }
  return logits;
}

}  // namespace zen::test
