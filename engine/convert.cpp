#include "engine/convert.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>

#include "engine/convert_internal.h"
#include "engine/quant_mix.h"
#include "engine/quantize.h"
#include "engine/safetensors.h"
#include "kernels/threadpool.h"

namespace zen::engine {

namespace fs = std::filesystem;
using kernels::DType;
using namespace convert;

namespace {

// Hugging Face name inside a layer -> GGUF name inside blk.N.
struct LayerName {
  const char* hf;
  const char* gguf;
};
constexpr LayerName kLayerNames[] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},      {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},      {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},          {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},          {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},           {"mlp.down_proj.weight", "ffn_down.weight"},
    {"input_layernorm.weight", "attn_norm.weight"},    {"post_attention_layernorm.weight", "ffn_norm.weight"},
};

// One output tensor: where it comes from, its HF shape, and whether its rows are permuted.
struct Planned {
  std::string gguf;
  std::string hf;
  std::vector<int64_t> shape;  // HF row-major: {rows, cols} or {n}
  int64_t permute_heads = 0;   // llama Q/K: heads whose rotary halves become pairs
};

// Every tensor the architecture needs, in GGUF order, with its expected HF shape.
std::vector<Planned> plan_tensors(const HfConfig& c, bool tied) {
  const int64_t E = c.n_embd, HD = c.head_dim, QD = c.n_head * HD, KD = c.n_head_kv * HD;
  const bool llama = c.arch == "llama";
  std::vector<Planned> p;
  p.push_back({"token_embd.weight", "model.embed_tokens.weight", {c.n_vocab, E}, 0});
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".", h = "model.layers." + std::to_string(il) + ".";
    p.push_back({b + "attn_norm.weight", h + "input_layernorm.weight", {E}, 0});
    p.push_back({b + "attn_q.weight", h + "self_attn.q_proj.weight", {QD, E}, llama ? c.n_head : 0});
    p.push_back({b + "attn_k.weight", h + "self_attn.k_proj.weight", {KD, E}, llama ? c.n_head_kv : 0});
    p.push_back({b + "attn_v.weight", h + "self_attn.v_proj.weight", {KD, E}, 0});
    if (c.arch == "qwen2") {
      p.push_back({b + "attn_q.bias", h + "self_attn.q_proj.bias", {QD}, 0});
      p.push_back({b + "attn_k.bias", h + "self_attn.k_proj.bias", {KD}, 0});
      p.push_back({b + "attn_v.bias", h + "self_attn.v_proj.bias", {KD}, 0});
    }
    if (c.arch == "qwen3") {
      p.push_back({b + "attn_q_norm.weight", h + "self_attn.q_norm.weight", {HD}, 0});
      p.push_back({b + "attn_k_norm.weight", h + "self_attn.k_norm.weight", {HD}, 0});
    }
    p.push_back({b + "attn_output.weight", h + "self_attn.o_proj.weight", {E, QD}, 0});
    p.push_back({b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {E}, 0});
    p.push_back({b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {c.n_ff, E}, 0});
    p.push_back({b + "ffn_up.weight", h + "mlp.up_proj.weight", {c.n_ff, E}, 0});
    p.push_back({b + "ffn_down.weight", h + "mlp.down_proj.weight", {E, c.n_ff}, 0});
  }
  p.push_back({"output_norm.weight", "model.norm.weight", {E}, 0});
  if (!tied) p.push_back({"output.weight", "lm_head.weight", {c.n_vocab, E}, 0});
  return p;
}

// A checkpoint tensor name this converter knows (so anything else is reported, not dropped).
bool known_hf_name(const std::string& n) {
  if (n == "model.embed_tokens.weight" || n == "model.norm.weight" || n == "lm_head.weight") return true;
  const std::string pre = "model.layers.";
  if (n.rfind(pre, 0) != 0) return false;
  size_t i = pre.size(), j = i;
  while (j < n.size() && std::isdigit(static_cast<unsigned char>(n[j]))) ++j;
  if (j == i || j >= n.size() || n[j] != '.') return false;
  const std::string rest = n.substr(j + 1);
  if (rest == "self_attn.rotary_emb.inv_freq") return true;  // recomputed, never stored in GGUF
  for (const LayerName& l : kLayerNames)
    if (rest == l.hf) return true;
  return false;
}

std::optional<DType> float_dtype(StDType t) {
  switch (t) {
    case StDType::F32: return DType::F32;
    case StDType::F16: return DType::F16;
    case StDType::BF16: return DType::BF16;
    default: return std::nullopt;
  }
}

Mix choose_mix(const std::string& outtype, const SafetensorsCheckpoint& ck, const std::vector<Planned>& plan) {
  if (outtype != "auto") {
    auto m = mix_from_name(outtype);
    if (!m) {
      std::string known = "auto";
      for (const auto& n : mix_names()) known += ", " + n;
      throw std::invalid_argument("unknown --outtype '" + outtype + "' (known: " + known + ")");
    }
    return *m;
  }
  std::map<StDType, size_t> count;
  for (const Planned& p : plan)
    if (p.shape.size() == 2) ++count[ck.at(p.hf).info->dtype];
  StDType best = StDType::F32;
  size_t most = 0;
  for (const auto& [t, n] : count)
    if (n > most) best = t, most = n;
  return best == StDType::F16 ? Mix::F16 : best == StDType::BF16 ? Mix::BF16 : Mix::F32;
}

}  // namespace

ConvertSummary convert_checkpoint(const std::string& dir, const std::string& out, const ConvertOptions& opts,
                                  const std::function<void(const ConvertProgress&)>& progress) {
  const fs::path root(dir);
  const std::string cfg_path = (root / "config.json").string();
  if (!fs::exists(cfg_path)) throw std::runtime_error(dir + ": no config.json (not a Hugging Face checkpoint folder?)");
  const HfConfig c = parse_hf_config(read_json(cfg_path), cfg_path);
  const SafetensorsCheckpoint ck = SafetensorsCheckpoint::open(dir);

  for (const std::string& n : ck.names())
    if (!known_hf_name(n)) throw std::runtime_error(dir + ": unexpected tensor '" + n + "' for " + c.hf_arch);
  // A missing lm_head means the head reuses the embedding, whatever the config says.
  const bool tied = c.tied || !ck.find("lm_head.weight");
  const std::vector<Planned> plan = plan_tensors(c, tied);
  for (const Planned& p : plan) {
    const CheckpointTensor* t = ck.find(p.hf);
    if (!t) throw std::runtime_error(dir + ": missing tensor '" + p.hf + "' (" + c.hf_arch + ")");
    if (t->info->shape != p.shape) {
      auto show = [](const std::vector<int64_t>& s) {
        std::string r = "[";
        for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
        return r + "]";
      };
      throw std::runtime_error(dir + ": tensor '" + p.hf + "' has shape " + show(t->info->shape) + ", config.json implies " +
                               show(p.shape));
    }
    if (!float_dtype(t->info->dtype))
      throw std::runtime_error(dir + ": tensor '" + p.hf + "' has dtype " + st_dtype_name(t->info->dtype) +
                               " (supported: F32, F16, BF16)");
  }
  for (const std::string& n : ck.names()) {
    const bool used = std::any_of(plan.begin(), plan.end(), [&](const Planned& p) { return p.hf == n; });
    if (!used && n != "lm_head.weight" && n.find("rotary_emb.inv_freq") == std::string::npos)
      throw std::runtime_error(dir + ": tensor '" + n + "' is not used by " + c.hf_arch + " (bias or norm of another variant?)");
  }

  const Mix mix = choose_mix(opts.outtype, ck, plan);
  GgufWriter w;
  write_hparams(w, c);
  std::string name = opts.name.empty() ? c.name : opts.name;
  if (name.empty()) name = fs::absolute(root).lexically_normal().filename().string();
  if (name.empty()) name = fs::absolute(root).lexically_normal().parent_path().filename().string();
  w.set_string("general.name", name);
  w.set_u32("general.file_type", mix_file_type(mix));
  if (!(mix == Mix::F32 || mix == Mix::F16 || mix == Mix::BF16)) w.set_u32("general.quantization_version", 2);
  const TokenizerInfo tok = write_tokenizer(w, dir, c);

  auto pool = std::make_shared<kernels::ThreadPool>(std::max(1, opts.threads));
  const int n_gqa = static_cast<int>(c.n_head / c.n_head_kv);
  const size_t total = plan.size();
  for (size_t i = 0; i < total; ++i) {
    const Planned& p = plan[i];
    const CheckpointTensor* src = ck.find(p.hf);
    const DType src_type = *float_dtype(src->info->dtype);
    const int n_dims = static_cast<int>(p.shape.size());
    const int64_t cols = p.shape.back(), rows = n_dims == 2 ? p.shape[0] : 1;
    const DType dst_type = choose_type(mix, p.gguf, n_dims, cols, static_cast<int>(c.n_layer), n_gqa, tied);
    std::vector<int64_t> ne = n_dims == 2 ? std::vector<int64_t>{cols, rows} : std::vector<int64_t>{cols};
    const int64_t heads = p.permute_heads, hd = c.head_dim;
    w.add_tensor(p.gguf, dst_type, ne, [=, &progress](std::span<std::byte> dst) {
      if (progress) progress({i + 1, total, p.gguf.c_str(), dst_type});
      const auto in = src->bytes();
      src->file->will_need(src->file_offset, in.size());
      const size_t sb = kernels::row_bytes(src_type, cols), db = kernels::row_bytes(dst_type, cols);
      const int64_t slab = std::max<int64_t>(1, (int64_t{1} << 22) / cols);  // ~16 MiB of f32 per step
      std::vector<std::byte> gathered;
      for (int64_t r0 = 0; r0 < rows; r0 += slab) {
        const int64_t nr = std::min(rows, r0 + slab) - r0;
        const std::byte* from = in.data() + static_cast<size_t>(r0) * sb;
        if (heads > 0) {  // GGUF row h*hd + 2i + j <- HF row h*hd + j*hd/2 + i
          gathered.resize(static_cast<size_t>(nr) * sb);
          for (int64_t r = r0; r < r0 + nr; ++r) {
            const int64_t h = r / hd, within = r % hd, pair = within / 2, half = within % 2;
            const int64_t s = h * hd + half * (hd / 2) + pair;
            std::memcpy(gathered.data() + static_cast<size_t>(r - r0) * sb, in.data() + static_cast<size_t>(s) * sb, sb);
          }
          from = gathered.data();
        }
        convert_rows(src_type, from, dst_type, dst.data() + static_cast<size_t>(r0) * db, nr, cols, *pool);
      }
      src->file->dont_need(src->file_offset, in.size());
    });
  }
  w.write(out);

  ConvertSummary s;
  s.arch = c.arch;
  s.tokenizer = tok.model;
  s.pre = tok.pre;
  s.outtype = mix_name(mix);
  s.n_tensors = total;
  s.tied_output = tied;
  return s;
}

}  // namespace zen::engine
