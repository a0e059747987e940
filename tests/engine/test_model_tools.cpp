// zen synth / zen quantize: mixes match llama-quantize's per-tensor types, quantized logits
// stay as close to F32 as llama.cpp's own files, and models written here run without
// ../shared at all.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/quantize.h"
#include "engine/synth.h"
#include "tests/engine/testdata.h"

namespace zen::engine {
namespace {

namespace fs = std::filesystem;

fs::path tmp_dir() {
  fs::path d = fs::temp_directory_path() / ("zen-test-" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::vector<float> logits_of(const std::string& path, const std::vector<int32_t>& ids, const SliceSpec& spec = {}) {
  auto model = Model::load(path, spec);
  ContextParams cp;
  cp.n_ctx = 256;
  cp.n_threads = 2;
  Context ctx(model, cp);
  std::vector<BatchRow> rows(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) rows[i] = {0, static_cast<int32_t>(i), ids[i], true};
  std::vector<float> out;
  ctx.forward(rows, nullptr, out, true);
  return out;
}

std::vector<int32_t> pattern(int n, int vocab) {
  std::vector<int32_t> ids{1};
  for (int i = 0; i + 1 < n; ++i) ids.push_back((i * 37 + 11) % vocab);
  return ids;
}

TEST(QuantMix, MatchesLlamaQuantizeTensorTypes) {
  ZEN_REQUIRE_TESTDATA();
  const auto dir = test::testdata_dir() / "models";
  for (const char* t : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q4_K_M", "Q5_K_M", "Q6_K", "F16", "BF16"}) {
    auto ref = GgufModelFile::open((dir / (std::string("synth-llama-") + t + ".gguf")).string());
    const Mix mix = *mix_from_name(t);
    for (const TensorInfo& ti : ref->gguf().tensors) {
      const auto got = choose_type(mix, ti.name, static_cast<int>(ti.n_dims), ti.ne[0], 4, 4, false);
      EXPECT_EQ(kernels::type_name(got), std::string(kernels::type_name(ti.type))) << t << " " << ti.name;
    }
  }
}

TEST(QuantMix, UnknownNameIsRejected) {
  EXPECT_FALSE(mix_from_name("q7_K").has_value());
  EXPECT_TRUE(mix_from_name("Q4_K_M").has_value());
}

// Our quantizer applied to the F32 reference model lands as close to llama.cpp's F32 logits
// as llama.cpp's own quantized file does (within 25 %: the quantizers are the same
// algorithms, the rounding of activations may differ).
TEST(Quantize, SynthF32ToEveryTypeStaysAsCloseAsLlamaCpp) {
  ZEN_REQUIRE_TESTDATA();
  const auto dir = test::testdata_dir();
  const auto ids = test::json_int_array(dir / "logits" / "synth.pattern64.tokens.json", "tokens");
  const auto f32 = test::read_f32(dir / "logits" / "synth-llama-F32.pattern64.f32");
  const fs::path tmp = tmp_dir();
  for (const char* t : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "F16", "BF16"}) {
    const fs::path out = tmp / (std::string("q-") + t + ".gguf");
    quantize_file((dir / "models" / "synth-llama-F32.gguf").string(), out.string(), *mix_from_name(t), 2);
    const auto ours = test::diff(logits_of(out.string(), ids), f32);
    const fs::path ref_path = dir / "logits" / (std::string("synth-llama-") + t + ".pattern64.f32");
    if (!fs::exists(ref_path)) {  // Q3_K_M: no reference logits were kept; bound by its neighbours
      EXPECT_LT(ours.rms, 0.2) << t;
      continue;
    }
    const auto theirs = test::diff(test::read_f32(ref_path), f32);
    std::printf("[ quantize %-6s ] rms vs F32: ours %.4g, llama.cpp %.4g\n", t, ours.rms, theirs.rms);
    EXPECT_LE(ours.rms, 1.25 * theirs.rms + 1e-6) << t;
    fs::remove(out);
  }
}

// Without ../shared: a model written here, quantized here, runs; Q8_0 tracks F32 closely and
// Q4_K_M less closely, and a split run over two slices equals the one-slice run exactly.
TEST(SelfMade, SynthQuantizeAndRun) {
  const fs::path tmp = tmp_dir();
  SynthParams p;
  p.arch = "qwen3";
  p.n_embd = 256;
  p.n_layer = 3;
  p.n_head = 4;
  p.n_head_kv = 2;
  p.n_ff = 512;
  p.n_vocab = 320;
  p.threads = 2;
  const std::string f32 = (tmp / "self-f32.gguf").string(), q8 = (tmp / "self-q8.gguf").string(),
                    q4 = (tmp / "self-q4km.gguf").string();
  write_synth_model(p, f32);
  quantize_file(f32, q8, Mix::Q8_0, 2);
  quantize_file(f32, q4, Mix::Q4_K_M, 2);
  const auto ids = pattern(24, 320);
  const auto a = logits_of(f32, ids), b = logits_of(q8, ids), c = logits_of(q4, ids);
  const auto d8 = test::diff(a, b), d4 = test::diff(a, c);
  EXPECT_GT(d8.rms, 0);
  EXPECT_LT(d8.rms, d4.rms);
  EXPECT_LT(d4.rms, 0.1);
  // determinism: the same seed writes the same file
  write_synth_model(p, (tmp / "self-f32-again.gguf").string());
  EXPECT_EQ(test::read_f32(f32), test::read_f32(tmp / "self-f32-again.gguf"));
  fs::remove_all(tmp);
}

// zen synth --embed-from: a larger llama shape (more dims, layers, heads, a wider head, more
// feed-forward units, a padded vocabulary) computes the small model's logits, and the padded
// tokens never come near winning. Rope pairs, the query scale, grouped heads and the norm
// rescaling all have to be right for the logits to agree.
TEST(SelfMade, EmbeddedModelComputesTheSmallOne) {
  const fs::path tmp = tmp_dir();
  const SynthParams small{.n_embd = 64, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 96, .n_vocab = 320, .threads = 2};
  const std::string s_path = (tmp / "embed-small.gguf").string(), b_path = (tmp / "embed-big.gguf").string();
  write_synth_model(small, s_path);
  // The bias dim goes to 256, alone in its block; 4 query heads per key/value head (2 in the
  // small model); a head twice as wide (32, the small one's 16).
  const SynthParams big{.n_embd = 512, .n_layer = 3, .n_head = 8, .n_head_kv = 2, .n_ff = 200, .n_vocab = 400,
                        .head_dim = 32, .embed_from = s_path, .threads = 2};
  write_synth_model(big, b_path);

  const auto ids = pattern(20, 320);
  const auto a = logits_of(s_path, ids), b = logits_of(b_path, ids);
  ASSERT_EQ(a.size(), ids.size() * 320);
  ASSERT_EQ(b.size(), ids.size() * 400);
  double max_diff = 0, max_abs = 0;
  for (size_t pos = 0; pos < ids.size(); ++pos) {
    float lowest = a[pos * 320];
    for (int t = 0; t < 320; ++t) {
      const float x = a[pos * 320 + t], y = b[pos * 400 + t];
      max_diff = std::max<double>(max_diff, std::abs(x - y));
      max_abs = std::max<double>(max_abs, std::abs(x));
      lowest = std::min(lowest, x);
    }
    for (int t = 320; t < 400; ++t) EXPECT_LT(b[pos * 400 + t], lowest - 100) << "padded token " << t << " at " << pos;
  }
  std::printf("[ embed ] largest logit difference %.3g (largest logit %.3g)\n", max_diff, max_abs);
  EXPECT_GT(max_abs, 0.01);
  EXPECT_LT(max_diff, 1e-5 * std::max(1.0, max_abs)) << "largest logit " << max_abs;

  // Shapes it cannot embed into are refused with the reason.
  SynthParams bad = big;
  bad.n_head_kv = 4;
  bad.n_head = 16;
  EXPECT_THROW(write_synth_model(bad, (tmp / "bad.gguf").string()), std::invalid_argument);
  bad = big;
  bad.head_dim = 24;
  EXPECT_THROW(write_synth_model(bad, (tmp / "bad.gguf").string()), std::invalid_argument);
  bad = big;
  bad.n_embd = 32;
  EXPECT_THROW(write_synth_model(bad, (tmp / "bad.gguf").string()), std::invalid_argument);
  fs::remove_all(tmp);
}


// zen synth --copier: greedy decoding continues a repeated text exactly, at F32 and after
// Q4_K_M quantization, over a context long enough that RoPE turns the fast pairs many times;
// a padded token (past the tokenizer's 320) is never chosen; shapes it cannot build are
// refused.
TEST(SelfMade, CopierContinuesARepeatedText) {
  const fs::path tmp = tmp_dir();
  SynthParams p{.n_embd = 1280, .n_layer = 4, .n_head = 8, .n_head_kv = 4, .n_ff = 256, .n_vocab = 384, .n_ctx = 512,
                .head_dim = 64, .copier = true, .threads = 2};
  // A tokenizer of 320 tokens, padded to 384.
  SynthParams vocab{.n_embd = 64, .n_layer = 1, .n_head = 2, .n_head_kv = 1, .n_ff = 64, .n_vocab = 320};
  const std::string vpath = (tmp / "vocab.gguf").string();
  write_synth_model(vocab, vpath);
  p.vocab_from = vpath;
  const std::string f32 = (tmp / "copier-f32.gguf").string(), q4 = (tmp / "copier-q4km.gguf").string();
  write_synth_model(p, f32);
  p.mix = Mix::Q4_K_M;
  write_synth_model(p, q4);
  // A unit of 40 distinct tokens, said three times, then its first 5 tokens.
  std::vector<int32_t> unit;
  for (int i = 0; i < 40; ++i) unit.push_back(3 + (i * 97) % 317);
  std::vector<int32_t> prompt{1};
  for (int r = 0; r < 3; ++r) prompt.insert(prompt.end(), unit.begin(), unit.end());
  prompt.insert(prompt.end(), unit.begin(), unit.begin() + 5);
  for (const std::string& path : {f32, q4}) {
    SCOPED_TRACE(path);
    auto model = Model::load(path);
    ContextParams cp;
    cp.n_ctx = 512;
    cp.n_threads = 2;
    Context ctx(model, cp);
    GenerateParams gp;
    gp.n_predict = 300;
    gp.sampler.temperature = 0;
    const auto out = generate(ctx, 0, prompt, gp, [](int32_t) { return true; });
    ASSERT_EQ(out.size(), 300u);
    for (size_t i = 0; i < out.size(); ++i)
      ASSERT_EQ(out[i], unit[(5 + i) % unit.size()]) << "token " << i << " after the prompt";
  }
  // A text with nothing to copy still gives real tokens.
  const auto l = logits_of(q4, pattern(30, 320));
  for (size_t pos = 0; pos < 30; ++pos) {
    const auto row = std::span<const float>(l).subspan(pos * 384, 384);
    EXPECT_LT(std::max_element(row.begin(), row.end()) - row.begin(), 320) << "a padded token wins at " << pos;
  }
  SynthParams bad = p;
  bad.n_embd = 1024;  // needs 4 * 4 * 64 + 1
  EXPECT_THROW(write_synth_model(bad, (tmp / "bad.gguf").string()), std::invalid_argument);
  bad = p;
  bad.n_layer = 2;
  EXPECT_THROW(write_synth_model(bad, (tmp / "bad.gguf").string()), std::invalid_argument);
  bad = p;
  bad.n_vocab = 300;  // smaller than the tokenizer
  EXPECT_THROW(write_synth_model(bad, (tmp / "bad.gguf").string()), std::invalid_argument);
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace zen::engine
