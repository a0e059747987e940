// The reference synthetic models of ../shared/testdata written out as Hugging Face checkpoints
// (inverse llama Q/K permutation, a tokenizer.model built from their SentencePiece vocabulary),
// converted back with zen convert: the result reproduces llama.cpp's reference logits.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/convert.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "tests/convert/convert_test_util.h"
#include "tests/engine/testdata.h"

namespace zen {
namespace {

using test::testdata_dir;
namespace fs = std::filesystem;

// Writes `gguf_path`'s weights, hyperparameters and SentencePiece vocabulary as an HF folder.
void export_to_hf(const std::string& gguf_path, const fs::path& dir) {
  auto file = engine::GgufModelFile::open(gguf_path);
  const engine::GgufFile& g = file->gguf();
  const engine::Hparams hp = engine::Hparams::from_gguf(g);
  test::HfSpec s;
  s.hf_arch = hp.arch == "llama" ? "LlamaForCausalLM" : hp.arch == "qwen2" ? "Qwen2ForCausalLM" : "Qwen3ForCausalLM";
  s.n_vocab = hp.n_vocab;
  s.n_embd = hp.n_embd;
  s.n_layer = hp.n_layer;
  s.n_head = hp.n_head;
  s.n_head_kv = hp.n_head_kv;
  s.n_ff = hp.n_ff;
  s.head_dim = hp.head_dim;
  s.n_ctx = hp.n_ctx_train;
  s.rope_theta = hp.rope.freq_base;
  s.rms_eps = hp.rms_eps;
  s.tied = g.find_tensor("output.weight") == nullptr;

  test::HfWeights w;
  for (const test::HfTensorSpec& t : test::hf_tensor_list(s)) {
    const std::string gname = test::gguf_name(t.name);
    const engine::TensorInfo* info = g.find_tensor(gname);
    if (!info || info->type != kernels::DType::F32) throw std::runtime_error(gguf_path + ": no F32 tensor " + gname);
    const auto* f = reinterpret_cast<const float*>(file->tensor_data(*info));
    std::vector<float> v(f, f + info->n_elements());
    const bool qk = gname.find("attn_q.weight") != std::string::npos || gname.find("attn_k.weight") != std::string::npos;
    if (hp.arch == "llama" && qk) {
      const int64_t heads = gname.find("attn_q") != std::string::npos ? hp.n_head : hp.n_head_kv;
      v = test::unpermute_rows_to_hf(v, heads, hp.head_dim, hp.n_embd);
    }
    w.shape[t.name] = t.shape;
    w.data[t.name] = std::move(v);
  }
  test::write_checkpoint(dir, s, w);

  engine::SpmModel m;
  const auto* tokens = g.get_string_array("tokenizer.ggml.tokens");
  const auto* scores = g.get_float_array("tokenizer.ggml.scores");
  const auto* types = g.get_int_array("tokenizer.ggml.token_type");
  for (size_t i = 0; i < tokens->size(); ++i)
    m.pieces.push_back({(*tokens)[i], static_cast<float>((*scores)[i]), static_cast<int32_t>((*types)[i])});
  m.bos_id = static_cast<int32_t>(g.get_int("tokenizer.ggml.bos_token_id").value_or(1));
  m.eos_id = static_cast<int32_t>(g.get_int("tokenizer.ggml.eos_token_id").value_or(2));
  m.unk_id = static_cast<int32_t>(g.get_int("tokenizer.ggml.unknown_token_id").value_or(0));
  m.byte_fallback = true;
  test::write_bytes(dir / "tokenizer.model", engine::write_spm_model(m));
}

class ConvertTestdata : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvertTestdata, ReproducesReferenceLogits) {
  ZEN_REQUIRE_TESTDATA();
  const std::string arch = GetParam();
  const auto dir = testdata_dir();
  const std::string src = (dir / "models" / ("synth-" + arch + "-F32.gguf")).string();
  test::TempDir tmp("testdata_" + arch);
  export_to_hf(src, tmp.path() / "hf");
  const std::string out = (tmp.path() / "back.gguf").string();
  engine::ConvertOptions opts;
  opts.threads = 2;  // outtype auto: the F32 checkpoint stays F32
  const auto summary = engine::convert_checkpoint((tmp.path() / "hf").string(), out, opts);
  EXPECT_EQ(summary.arch, arch);
  EXPECT_EQ(summary.outtype, "f32");

  // Same tensors byte for byte (the permutation and its inverse cancel), same vocabulary.
  auto a = engine::GgufModelFile::open(src), b = engine::GgufModelFile::open(out);
  ASSERT_EQ(a->gguf().tensors.size(), b->gguf().tensors.size());
  for (const auto& t : a->gguf().tensors) {
    const engine::TensorInfo* u = b->gguf().find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(u->bytes, t.bytes) << t.name;
    EXPECT_EQ(std::memcmp(a->tensor_data(t), b->tensor_data(*u), t.bytes), 0) << t.name;
  }
  for (const char* key : {"tokenizer.ggml.tokens"})
    EXPECT_EQ(*a->gguf().get_string_array(key), *b->gguf().get_string_array(key));
  EXPECT_EQ(*a->gguf().get_float_array("tokenizer.ggml.scores"), *b->gguf().get_float_array("tokenizer.ggml.scores"));
  EXPECT_EQ(*a->gguf().get_int_array("tokenizer.ggml.token_type"), *b->gguf().get_int_array("tokenizer.ggml.token_type"));

  const auto ids = test::json_int_array(dir / "logits" / "synth.pattern64.tokens.json", "tokens");
  const auto ref = test::read_f32(dir / "logits" / ("synth-" + arch + "-F32.pattern64.f32"));
  const auto ours = test::engine_logits(out, ids);
  ASSERT_EQ(ours.size(), ref.size());
  const auto d = test::diff(ours, ref);
  EXPECT_LT(d.max_abs, 1e-4) << arch << " rms " << d.rms;
}

INSTANTIATE_TEST_SUITE_P(Synth, ConvertTestdata, ::testing::Values("llama", "qwen2", "qwen3"));

}  // namespace
}  // namespace zen
