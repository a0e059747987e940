#include "engine/synth.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/gguf.h"
#include "engine/gguf_writer.h"
#include "engine/quantize.h"
#include "engine/synth_internal.h"
#include "kernels/threadpool.h"

namespace zen::engine {

using kernels::DType;

namespace {

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = seed ^ 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Fills rows [r0, r1) of a tensor: row r uses its own stream so rows can be made in parallel.
void fill_gaussian(float* dst, int64_t r0, int64_t r1, int64_t cols, uint64_t stream, float scale, float offset) {
  for (int64_t r = r0; r < r1; ++r) {
    uint64_t s = stream ^ (static_cast<uint64_t>(r) * 0xD1B54A32D192ED03ull);
    float* row = dst + (r - r0) * cols;
    for (int64_t i = 0; i < cols; i += 2) {
      // Box-Muller on two uniforms in (0, 1]
      const double u1 = (static_cast<double>(synth_detail::splitmix(s) >> 11) + 1.0) * 0x1.0p-53;
      const double u2 = static_cast<double>(synth_detail::splitmix(s) >> 11) * 0x1.0p-53;
      const double rad = std::sqrt(-2.0 * std::log(u1));
      row[i] = offset + scale * static_cast<float>(rad * std::cos(2 * M_PI * u2));
      if (i + 1 < cols) row[i + 1] = offset + scale * static_cast<float>(rad * std::sin(2 * M_PI * u2));
    }
  }
}

}  // namespace

namespace synth_detail {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void write_synthetic_vocab(GgufWriter& w, int64_t n_vocab) {
  if (n_vocab < 300) throw std::invalid_argument("a synthetic vocabulary needs at least 300 tokens (or use --vocab-from)");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  char hex[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(hex, sizeof hex, "<0x%02X>", b);
    tokens.emplace_back(hex);
    scores.push_back(0);
    types.push_back(6);
  }
  const std::string mark = "\xE2\x96\x81";  // U+2581, the SentencePiece space
  std::vector<std::string> pieces;
  const std::string letters = "etaoinshrdlcumwfgypbvkjxqz";
  pieces.push_back(mark);
  for (char c = 33; c < 127; ++c) pieces.emplace_back(1, c);
  for (char c : letters) pieces.push_back(mark + c);
  for (char a : letters)
    for (char b : letters) {
      pieces.push_back(std::string{a, b});
      pieces.push_back(mark + a + b);
    }
  for (char a : letters)
    for (char b : letters)
      for (char c : letters) pieces.push_back(mark + a + b + c);
  float score = -1;
  for (size_t i = 0; tokens.size() < static_cast<size_t>(n_vocab); ++i) {
    tokens.push_back(i < pieces.size() ? pieces[i] : "<extra_" + std::to_string(i) + ">");
    scores.push_back(score);
    score -= 0.01f;
    types.push_back(i < pieces.size() ? 1 : 4);
  }
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_strings("tokenizer.ggml.tokens", tokens);
  w.set_f32s("tokenizer.ggml.scores", scores);
  w.set_i32s("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", false);
}

void write_shape(GgufWriter& w, const SynthParams& p, const std::string& a, int64_t hd, int64_t n_ctx, float eps, float rope_base) {
  w.set_u32("general.file_type", mix_file_type(p.mix));
  w.set_u32(a + ".context_length", static_cast<uint32_t>(n_ctx));
  w.set_u32(a + ".embedding_length", static_cast<uint32_t>(p.n_embd));
  w.set_u32(a + ".block_count", static_cast<uint32_t>(p.n_layer));
  w.set_u32(a + ".feed_forward_length", static_cast<uint32_t>(p.n_ff));
  w.set_u32(a + ".attention.head_count", static_cast<uint32_t>(p.n_head));
  w.set_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
  w.set_f32(a + ".attention.layer_norm_rms_epsilon", eps);
  w.set_f32(a + ".rope.freq_base", rope_base);
  w.set_u32(a + ".vocab_size", static_cast<uint32_t>(p.n_vocab));
  if (a == "llama") w.set_u32(a + ".rope.dimension_count", static_cast<uint32_t>(hd));
  if (p.head_dim > 0 || a == "qwen3") {
    w.set_u32(a + ".attention.key_length", static_cast<uint32_t>(hd));
    w.set_u32(a + ".attention.value_length", static_cast<uint32_t>(hd));
  }
}

int64_t tokenizer_size(const GgufFile& src, const std::string& who) {
  const auto* tokens = src.get_string_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->empty()) throw std::invalid_argument(who + ": no tokenizer.ggml.tokens to copy");
  return static_cast<int64_t>(tokens->size());
}

void copy_tokenizer_padded(GgufWriter& w, const GgufFile& src, int64_t n_vocab, const std::string& who) {
  const int64_t n_src = tokenizer_size(src, who);
  if (n_vocab < n_src)
    throw std::invalid_argument(who + ": the vocabulary (" + std::to_string(n_vocab) + ") is smaller than the tokenizer's " +
                                std::to_string(n_src) + " tokens");
  const int64_t pad = n_vocab - n_src;
  for (const auto& [key, value] : src.kv) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    GgufValue v = value;
    if (key == "tokenizer.ggml.tokens")
      for (int64_t i = 0; i < pad; ++i) v.strings.push_back("<zen_pad_" + std::to_string(i) + ">");
    else if (key == "tokenizer.ggml.scores")
      v.floats.insert(v.floats.end(), static_cast<size_t>(pad), -1e9);
    else if (key == "tokenizer.ggml.token_type")
      v.ints.insert(v.ints.end(), static_cast<size_t>(pad), 5);  // unused
    else if (pad > 0 && value.type == GgufType::ARRAY && value.array_size() == static_cast<size_t>(n_src))
      throw std::invalid_argument(who + ": cannot pad the per-token array " + key);
    w.set(key, std::move(v));
  }
}

void add_dense_tensors(GgufWriter& w, std::vector<DenseSpec> specs_in, Mix mix, int n_layer, int n_gqa,
                       std::shared_ptr<kernels::ThreadPool> pool, const std::function<void(size_t, size_t)>& progress) {
  auto specs = std::make_shared<std::vector<DenseSpec>>(std::move(specs_in));
  const size_t total = specs->size();
  for (size_t i = 0; i < total; ++i) {
    const DenseSpec& sp = (*specs)[i];
    const int n_dims = sp.rows == 0 ? 1 : 2;
    const int64_t rows = std::max<int64_t>(1, sp.rows);
    const DType type = choose_type(mix, sp.name, n_dims, sp.cols, n_layer, n_gqa, false);
    const std::vector<int64_t> ne = n_dims == 1 ? std::vector<int64_t>{sp.cols} : std::vector<int64_t>{sp.cols, sp.rows};
    w.add_tensor(sp.name, type, ne, [specs, pool, progress, i, rows, type, total](std::span<std::byte> dst) {
      const DenseSpec& s = (*specs)[i];
      std::vector<float> buf(static_cast<size_t>(rows * s.cols), 0.f);
      s.fill(buf.data());
      convert_rows(DType::F32, buf.data(), type, dst.data(), rows, s.cols, *pool);
      if (progress) progress(i + 1, total);
    });
  }
}

}  // namespace synth_detail

void write_synth_model(const SynthParams& p, const std::string& path, const std::function<void(size_t, size_t)>& progress) {
  if (!p.embed_from.empty() && p.copier) throw std::invalid_argument("--embed-from and --copier: give only one");
  if (!p.embed_from.empty()) {
    write_embedded_model(p, path, progress);
    return;
  }
  if (p.copier) {
    write_copier_model(p, path, progress);
    return;
  }
  if (p.arch != "llama" && p.arch != "qwen2" && p.arch != "qwen3")
    throw std::invalid_argument("unsupported architecture '" + p.arch + "' (supported: llama, qwen2, qwen3)");
  if (p.n_embd <= 0 || p.n_layer <= 0 || p.n_head <= 0 || p.n_head_kv <= 0 || p.n_ff <= 0 || p.n_vocab <= 0)
    throw std::invalid_argument("every dimension must be positive");
  if (p.n_head % p.n_head_kv != 0) throw std::invalid_argument("n_head must be a multiple of n_head_kv");
  const int64_t hd = p.head_dim > 0 ? p.head_dim : p.n_embd / p.n_head;
  if (hd <= 0 || hd % 2 != 0) throw std::invalid_argument("head dimension must be even and positive");
  const std::string& a = p.arch;

  GgufWriter w;
  w.set_string("general.architecture", a);
  w.set_string("general.name", p.name.empty() ? "synthetic-" + a + "-" + std::to_string(p.n_embd) + "x" + std::to_string(p.n_layer) +
                                                   "-seed" + std::to_string(p.seed)
                                              : p.name);
  synth_detail::write_shape(w, p, a, hd, p.n_ctx, 1e-5f, p.rope_freq_base);
  if (!p.vocab_from.empty()) {
    auto src = GgufModelFile::open(p.vocab_from);
    const int64_t n_src = synth_detail::tokenizer_size(src->gguf(), p.vocab_from);
    if (n_src != p.n_vocab)
      throw std::invalid_argument(p.vocab_from + " has " + std::to_string(n_src) + " tokens but --vocab is " + std::to_string(p.n_vocab));
    synth_detail::copy_tokenizer_padded(w, src->gguf(), p.n_vocab, p.vocab_from);
  } else {
    synth_detail::write_synthetic_vocab(w, p.n_vocab);
  }

  auto pool = std::make_shared<kernels::ThreadPool>(std::max(1, p.threads));
  const int n_gqa = static_cast<int>(p.n_head / p.n_head_kv);
  struct Spec { std::string name; int64_t cols, rows; float scale, offset; };
  std::vector<Spec> specs;
  const int64_t qd = p.n_head * hd, kvd = p.n_head_kv * hd;
  specs.push_back({"token_embd.weight", p.n_embd, p.n_vocab, 0.02f, 0});
  for (int64_t il = 0; il < p.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    specs.push_back({b + "attn_norm.weight", p.n_embd, 0, 0.1f, 1});
    specs.push_back({b + "attn_q.weight", p.n_embd, qd, 0.02f, 0});
    specs.push_back({b + "attn_k.weight", p.n_embd, kvd, 0.02f, 0});
    specs.push_back({b + "attn_v.weight", p.n_embd, kvd, 0.02f, 0});
    if (a == "qwen2") {
      specs.push_back({b + "attn_q.bias", qd, 0, 0.1f, 0});
      specs.push_back({b + "attn_k.bias", kvd, 0, 0.1f, 0});
      specs.push_back({b + "attn_v.bias", kvd, 0, 0.1f, 0});
    }
    if (a == "qwen3") {
      specs.push_back({b + "attn_q_norm.weight", hd, 0, 0.1f, 1});
      specs.push_back({b + "attn_k_norm.weight", hd, 0, 0.1f, 1});
    }
    specs.push_back({b + "attn_output.weight", qd, p.n_embd, 0.02f, 0});
    specs.push_back({b + "ffn_norm.weight", p.n_embd, 0, 0.1f, 1});
    specs.push_back({b + "ffn_gate.weight", p.n_embd, p.n_ff, 0.02f, 0});
    specs.push_back({b + "ffn_up.weight", p.n_embd, p.n_ff, 0.02f, 0});
    specs.push_back({b + "ffn_down.weight", p.n_ff, p.n_embd, 0.02f, 0});
  }
  specs.push_back({"output_norm.weight", p.n_embd, 0, 0.1f, 1});
  if (!p.tied_output) specs.push_back({"output.weight", p.n_embd, p.n_vocab, 0.02f, 0});

  const size_t total = specs.size();
  for (size_t i = 0; i < total; ++i) {
    const Spec s = specs[i];
    const int n_dims = s.rows == 0 ? 1 : 2;
    const int64_t rows = std::max<int64_t>(1, s.rows);
    const DType type = choose_type(p.mix, s.name, n_dims, s.cols, static_cast<int>(p.n_layer), n_gqa, p.tied_output);
    std::vector<int64_t> ne = n_dims == 1 ? std::vector<int64_t>{s.cols} : std::vector<int64_t>{s.cols, s.rows};
    const uint64_t stream = hash_name(s.name, p.seed);
    w.add_tensor(s.name, type, ne, [=, &progress](std::span<std::byte> dst) {
      // Generate and convert in slabs of rows so memory stays small for big tensors.
      const int64_t slab = std::max<int64_t>(1, (int64_t{1} << 22) / s.cols);
      std::vector<float> buf(static_cast<size_t>(std::min(slab, rows) * s.cols));
      const size_t rb = kernels::row_bytes(type, s.cols);
      for (int64_t r0 = 0; r0 < rows; r0 += slab) {
        const int64_t r1 = std::min(rows, r0 + slab);
        const int64_t nr = r1 - r0;
        pool->parallel_for(nr, 16, [&](int64_t k, int64_t k1, int) {
          fill_gaussian(buf.data() + k * s.cols, r0 + k, r0 + k1, s.cols, stream, s.scale, s.offset);
        });
        convert_rows(DType::F32, buf.data(), type, dst.data() + static_cast<size_t>(r0) * rb, nr, s.cols, *pool);
      }
      if (progress) progress(i + 1, total);
    });
  }
  w.write(path);
}

}  // namespace zen::engine
