// zen convert output types (f16/bf16/auto/q8_0/q4_K_M), config variants, and the clear errors
// for what it does not support.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "engine/convert.h"
#include "engine/model.h"
#include "kernels/half.h"
#include "kernels/ops.h"
#include "tests/convert/convert_test_util.h"

namespace zen {
namespace {

using engine::StDType;
using kernels::DType;
using nlohmann::json;
namespace fs = std::filesystem;

struct Checkpoint {
  test::HfSpec spec;
  test::HfWeights w;
};

Checkpoint make_llama(const fs::path& dir, test::HfSpec spec = {}) {
  const engine::SpmModel spm = test::train_spm(test::training_corpus(), 100);
  spec.n_vocab = static_cast<int64_t>(spm.pieces.size());
  Checkpoint c{spec, test::random_weights(spec)};
  test::write_checkpoint(dir, spec, c.w);
  test::write_bytes(dir / "tokenizer.model", engine::write_spm_model(spm));
  return c;
}

void patch_config(const fs::path& dir, const std::function<void(json&)>& edit) {
  json j = json::parse(test::read_text(dir / "config.json"));
  edit(j);
  test::write_text(dir / "config.json", j.dump());
}

// The source values of an HF tensor in GGUF row order.
std::vector<float> gguf_order(const Checkpoint& c, const std::string& hf) {
  const auto& v = c.w.at(hf);
  const int64_t hd = c.spec.hd(), cols = c.w.shape.at(hf).back();
  if (hf.find("q_proj.weight") != std::string::npos) return test::permute_rows_for_gguf(v, c.spec.n_head, hd, cols);
  if (hf.find("k_proj.weight") != std::string::npos) return test::permute_rows_for_gguf(v, c.spec.n_head_kv, hd, cols);
  return v;
}

std::vector<float> dequantized(const engine::GgufModelFile& f, const engine::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const auto* src = f.tensor_data(t);
  if (t.type == DType::F32) std::memcpy(out.data(), src, out.size() * 4);
  else kernels::ops(t.type).dequantize(src, out.data(), t.n_elements());
  return out;
}

std::string convert_error(const fs::path& dir, const std::string& outtype = "f32") {
  const std::string out = (dir / "x.gguf").string();
  engine::ConvertOptions o;
  o.outtype = outtype;
  fs::remove(out);
  try {
    engine::convert_checkpoint(dir.string(), out, o);
  } catch (const std::exception& e) {
    EXPECT_FALSE(fs::exists(out)) << "an output file was left behind";
    EXPECT_FALSE(fs::exists(out + ".tmp")) << "a temporary file was left behind";
    return e.what();
  }
  return "";
}

TEST(ConvertTypes, HalfTypesRoundEachValue) {
  test::TempDir tmp("types_half");
  const Checkpoint c = make_llama(tmp.path() / "hf");
  for (const auto& [outtype, dtype] : {std::pair{"f16", DType::F16}, std::pair{"bf16", DType::BF16}}) {
    const std::string out = (tmp.path() / (std::string(outtype) + ".gguf")).string();
    engine::ConvertOptions o;
    o.outtype = outtype;
    const auto s = engine::convert_checkpoint((tmp.path() / "hf").string(), out, o);
    EXPECT_EQ(s.outtype, outtype);
    auto f = engine::GgufModelFile::open(out);
    EXPECT_EQ(f->gguf().get_int("general.file_type"), dtype == DType::F16 ? 1 : 32);
    for (const auto& [hf, shape] : c.w.shape) {
      const engine::TensorInfo* t = f->gguf().find_tensor(test::gguf_name(hf));
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->type, shape.size() == 2 ? dtype : DType::F32) << t->name;  // norms stay F32
      const auto got = dequantized(*f, *t);
      const auto want = gguf_order(c, hf);
      for (size_t i = 0; i < want.size(); ++i) {
        const float r = shape.size() == 1 ? want[i]
                        : dtype == DType::F16 ? kernels::fp16_to_fp32(kernels::fp32_to_fp16(want[i]))
                                              : kernels::bf16_to_fp32(kernels::fp32_to_bf16(want[i]));
        ASSERT_EQ(got[i], r) << t->name << "[" << i << "]";
      }
    }
  }
}

TEST(ConvertTypes, AutoKeepsTheSourceType) {
  test::TempDir tmp("types_auto");
  test::HfSpec spec;
  spec.dtype = StDType::BF16;
  const Checkpoint c = make_llama(tmp.path() / "hf", spec);
  const std::string out = (tmp.path() / "auto.gguf").string();
  const auto s = engine::convert_checkpoint((tmp.path() / "hf").string(), out, {});
  EXPECT_EQ(s.outtype, "bf16");
  auto f = engine::GgufModelFile::open(out);
  const engine::TensorInfo* t = f->gguf().find_tensor("blk.1.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, DType::BF16);
  EXPECT_EQ(dequantized(*f, *t), c.w.at("model.layers.1.mlp.down_proj.weight"));
}

TEST(ConvertTypes, Q8_0IsCloseToTheSource) {
  test::TempDir tmp("types_q8");
  const Checkpoint c = make_llama(tmp.path() / "hf");
  const std::string out = (tmp.path() / "q8.gguf").string();
  engine::ConvertOptions o;
  o.outtype = "q8_0";
  engine::convert_checkpoint((tmp.path() / "hf").string(), out, o);
  auto f = engine::GgufModelFile::open(out);
  EXPECT_EQ(f->gguf().get_int("general.quantization_version"), 2);
  for (const auto& [hf, shape] : c.w.shape) {
    if (shape.size() != 2) continue;
    const engine::TensorInfo* t = f->gguf().find_tensor(test::gguf_name(hf));
    EXPECT_EQ(t->type, DType::Q8_0) << t->name;
    const auto got = dequantized(*f, *t), want = gguf_order(c, hf);
    // Each block: error at most half a step of amax/127, plus the f16 rounding of the block scale
    // (relative 2^-11, times quantized values up to 127).
    for (size_t b = 0; b < want.size(); b += 32) {
      float amax = 0;
      for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::abs(want[i]));
      const float bound = amax / 127 * 0.5f + amax * 0x1p-11f + 1e-7f;
      for (size_t i = b; i < b + 32; ++i) ASSERT_LE(std::abs(got[i] - want[i]), bound) << t->name;
    }
  }
  const std::vector<int32_t> ids = {1, 30, 300, 42, 7, 99};
  const auto ref = test::hf_forward(c.spec, c.w, ids), ours = test::engine_logits(out, ids);
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    max_ref = std::max<double>(max_ref, std::abs(ref[i])), max_diff = std::max<double>(max_diff, std::abs(ref[i] - ours[i]));
  EXPECT_LT(max_diff, 0.05 * max_ref);
}

TEST(ConvertTypes, KQuantMixFollowsTheMixRules) {
  test::TempDir tmp("types_q4km");
  test::HfSpec spec;  // rows of 256 so K-quant super-blocks fit
  spec.n_embd = 256;
  spec.n_ff = 512;
  spec.n_layer = 2;
  const Checkpoint c = make_llama(tmp.path() / "hf", spec);
  const std::string out = (tmp.path() / "q4km.gguf").string();
  engine::ConvertOptions o;
  o.outtype = "q4_K_M";
  engine::convert_checkpoint((tmp.path() / "hf").string(), out, o);
  auto f = engine::GgufModelFile::open(out);
  EXPECT_EQ(f->gguf().get_int("general.file_type"), 15);
  EXPECT_EQ(f->gguf().find_tensor("output.weight")->type, DType::Q6_K);
  EXPECT_EQ(f->gguf().find_tensor("blk.0.attn_q.weight")->type, DType::Q4_K);
  EXPECT_EQ(f->gguf().find_tensor("blk.0.ffn_gate.weight")->type, DType::Q4_K);
  EXPECT_EQ(f->gguf().find_tensor("blk.0.attn_norm.weight")->type, DType::F32);
  const std::vector<int32_t> ids = {1, 30, 300, 42};
  const auto ref = test::hf_forward(c.spec, c.w, ids), ours = test::engine_logits(out, ids);
  double dot = 0, nr = 0, no = 0;
  for (size_t i = 0; i < ref.size(); ++i) dot += ref[i] * ours[i], nr += ref[i] * ref[i], no += ours[i] * ours[i];
  EXPECT_GT(dot / std::sqrt(nr * no), 0.98) << "Q4_K_M logits should follow the F32 reference";
}

TEST(ConvertConfig, TiedWhenLmHeadIsAbsentAndLinearRopeScaling) {
  test::TempDir tmp("cfg_tied");
  test::HfSpec spec;
  spec.tied = true;  // no lm_head.weight written ...
  make_llama(tmp.path(), spec);
  patch_config(tmp.path(), [](json& j) {
    j["tie_word_embeddings"] = false;  // ... while the config says untied: the head reuses the embedding
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  });
  const std::string out = (tmp.path() / "t.gguf").string();
  const auto s = engine::convert_checkpoint(tmp.path().string(), out, {});
  EXPECT_TRUE(s.tied_output);
  auto m = engine::Model::load(out);
  EXPECT_EQ(m->file().gguf().find_tensor("output.weight"), nullptr);
  EXPECT_FLOAT_EQ(m->hp().rope.freq_scale, 0.25f);
}

TEST(ConvertErrors, ClearMessages) {
  test::TempDir tmp("errors");
  const fs::path d = tmp.path();
  const Checkpoint c = make_llama(d);
  EXPECT_NE(convert_error(d, "q3_X").find("unknown --outtype 'q3_X'"), std::string::npos);

  patch_config(d, [](json& j) { j["architectures"] = {"GPT2LMHeadModel"}; });
  EXPECT_NE(convert_error(d).find("unsupported architecture 'GPT2LMHeadModel'"), std::string::npos);
  patch_config(d, [](json& j) { j["architectures"] = {"LlamaForCausalLM"}; j["hidden_act"] = "gelu"; });
  EXPECT_NE(convert_error(d).find("unsupported hidden_act 'gelu'"), std::string::npos);
  patch_config(d, [](json& j) { j["hidden_act"] = "silu"; j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
  EXPECT_NE(convert_error(d).find("unsupported rope_scaling type 'yarn'"), std::string::npos);
  patch_config(d, [](json& j) { j["rope_scaling"] = nullptr; j["hidden_size"] = 96; });
  EXPECT_NE(convert_error(d).find("config.json implies"), std::string::npos);
  patch_config(d, [](json& j) { j["hidden_size"] = 64; });
  EXPECT_EQ(convert_error(d), "");  // back to a valid checkpoint

  auto rewrite_weights = [&](const std::function<void(std::vector<engine::StWriteTensor>&)>& edit) {
    const test::HfWeights& w = c.w;
    std::vector<engine::StWriteTensor> ts;
    for (const auto& [name, v] : w.data) {
      std::vector<std::byte> b(v.size() * 4);
      std::memcpy(b.data(), v.data(), b.size());
      ts.push_back({name, StDType::F32, w.shape.at(name), std::move(b)});
    }
    edit(ts);
    test::write_bytes(d / "model.safetensors", engine::write_safetensors(ts));
  };
  rewrite_weights([](auto& ts) {
    for (auto& t : ts)
      if (t.name == "model.layers.1.mlp.up_proj.weight") {
        t.dtype = StDType::F64;
        t.data.resize(t.data.size() * 2);
      }
  });
  EXPECT_NE(convert_error(d).find("has dtype F64 (supported: F32, F16, BF16)"), std::string::npos);
  rewrite_weights([](auto& ts) { std::erase_if(ts, [](const auto& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; }); });
  EXPECT_NE(convert_error(d).find("missing tensor 'model.layers.1.mlp.up_proj.weight'"), std::string::npos);
  rewrite_weights([](auto& ts) { ts.push_back({"model.layers.0.self_attn.q_proj.bias", StDType::F32, {64}, std::vector<std::byte>(256)}); });
  EXPECT_NE(convert_error(d).find("'model.layers.0.self_attn.q_proj.bias' is not used"), std::string::npos);
  rewrite_weights([](auto& ts) { ts.push_back({"model.layers.0.mlp.experts.0.weight", StDType::F32, {1}, std::vector<std::byte>(4)}); });
  EXPECT_NE(convert_error(d).find("unexpected tensor 'model.layers.0.mlp.experts.0.weight'"), std::string::npos);
  rewrite_weights([](auto&) {});

  fs::remove(d / "tokenizer.model");
  EXPECT_NE(convert_error(d).find("no tokenizer.model or tokenizer.json"), std::string::npos);
  test::write_text(d / "tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  EXPECT_NE(convert_error(d).find("tokenizer model 'WordPiece' is not supported"), std::string::npos);
  test::write_text(d / "tokenizer.json",
                   R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}})");
  EXPECT_NE(convert_error(d).find("unsupported pre_tokenizer 'Metaspace'"), std::string::npos);
}

}  // namespace
}  // namespace zen
