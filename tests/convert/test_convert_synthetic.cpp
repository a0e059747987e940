// zen convert on small random Hugging Face checkpoints of every supported architecture, each
// with a SentencePiece tokenizer.model and with a byte-level BPE tokenizer.json: the GGUF's
// tensors equal the source after the documented Q/K permutation, its forward pass equals a
// straightforward HF-semantics implementation, and its tokenizer reproduces the source's ids.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "engine/convert.h"
#include "engine/forward.h"
#include "engine/tokenizer.h"
#include "kernels/half.h"
#include "kernels/ops.h"
#include "tests/convert/convert_test_util.h"

namespace zen {
namespace {

using engine::StDType;
using test::HfSpec;

enum class Tok { Spm, Bpe };

struct ArchCase {
  const char* label;
  HfSpec spec;
  const char* arch;        // expected general.architecture
  const char* bpe_pre;     // expected tokenizer.ggml.pre for the BPE variant
};

std::vector<ArchCase> arch_cases() {
  std::vector<ArchCase> v;
  HfSpec llama;  // GQA, F32
  llama.rope_theta = 10000;
  v.push_back({"llama", llama, "llama", "llama-bpe"});
  HfSpec mistral;  // explicit head_dim != n_embd / n_head, one KV head, BF16 source, 3 shards
  mistral.hf_arch = "MistralForCausalLM";
  mistral.n_head_kv = 1;
  mistral.head_dim = 32;
  mistral.rope_theta = 1e6;
  mistral.dtype = StDType::BF16;
  mistral.shards = 3;
  v.push_back({"mistral", mistral, "llama", "gpt-2"});
  HfSpec qwen2;  // q/k/v biases, tied embeddings, F16 source
  qwen2.hf_arch = "Qwen2ForCausalLM";
  qwen2.tied = true;
  qwen2.rms_eps = 1e-6;
  qwen2.rope_theta = 1e6;
  qwen2.dtype = StDType::F16;
  v.push_back({"qwen2", qwen2, "qwen2", "qwen2"});
  HfSpec qwen3;  // per-head q/k norms, head_dim 24
  qwen3.hf_arch = "Qwen3ForCausalLM";
  qwen3.head_dim = 24;
  qwen3.n_head = 4;
  qwen3.n_head_kv = 2;
  v.push_back({"qwen3", qwen3, "qwen3", "qwen2"});
  return v;
}

const std::vector<std::string>& spm_strings() {
  static const std::vector<std::string> s = {
      "Once upon a time, there was a little girl named Lily.",
      "Max wagged his tail and ran to the tree.",
      "Hello world",
      "  two  spaces and a trailing one ",
      "caf\xC3\xA9 costs 5\xE2\x82\xAC \xF0\x9F\x99\x82 today",
      "Tom's car was blue.\nThe end.",
      "a",
  };
  return s;
}

const std::vector<std::string>& bpe_strings() {
  static const std::vector<std::string> s = {
      "Once upon a time, there was a little girl named Lily.",
      "Hello world!!  It's 12345 o'clock.",
      "<|im_start|>user\nHi there, Max<|im_end|>\n",
      "tabs\tand\nnewlines\n\n  end  ",
      "Don't you LIKE it? I'M sure we'll see THEY'RE here",
      "x",
      "   ",
  };
  return s;
}

class ConvertArch : public ::testing::TestWithParam<std::tuple<int, Tok>> {};

TEST_P(ConvertArch, TensorsForwardAndTokenizer) {
  const ArchCase ac = arch_cases()[static_cast<size_t>(std::get<0>(GetParam()))];
  const Tok tok = std::get<1>(GetParam());
  test::TempDir tmp(std::string(ac.label) + (tok == Tok::Spm ? "_spm" : "_bpe"));
  HfSpec spec = ac.spec;
  spec.seed = 7 + static_cast<uint64_t>(std::get<0>(GetParam()));

  // Tokenizer first: its size fixes the vocabulary (plus 3 unused ids that become [PAD] tokens).
  engine::SpmModel spm;
  test::TestBpe bpe;
  const std::string corpus = test::training_corpus();
  if (tok == Tok::Spm) {
    spm = test::train_spm(corpus, 150);
    spec.n_vocab = static_cast<int64_t>(spm.pieces.size()) + 3;
  } else {
    const std::string label = ac.label;
    if (label == "llama") bpe = test::train_bpe(corpus, 150, test::kLlama3Hf, test::kLlama3Ecma);
    else if (label == "mistral") bpe = test::train_bpe(corpus, 150, "", test::kGpt2Ecma);
    else bpe = test::train_bpe(corpus, 150, test::kQwen2Hf, test::kQwen2Ecma);
    bpe.ignore_merges = bpe.bos_template = label == "llama";
    bpe.clean_spaces = label == "mistral";
    spec.n_vocab = static_cast<int64_t>(bpe.tokens.size()) + 3;
  }
  const test::HfWeights w = test::random_weights(spec);
  test::write_checkpoint(tmp.path(), spec, w);
  if (tok == Tok::Spm) test::write_bytes(tmp.path() / "tokenizer.model", engine::write_spm_model(spm));
  else test::write_bpe_tokenizer(tmp.path(), bpe);

  const std::string out = (tmp.path() / "out.gguf").string();
  engine::ConvertOptions opts;
  opts.outtype = "f32";
  opts.threads = 2;
  size_t progress_calls = 0;
  const auto summary = engine::convert_checkpoint(tmp.path().string(), out, opts, [&](const engine::ConvertProgress& p) {
    ++progress_calls;
    EXPECT_LE(p.done, p.total);
  });
  EXPECT_EQ(summary.arch, ac.arch);
  EXPECT_EQ(summary.tied_output, spec.tied);
  EXPECT_EQ(progress_calls, summary.n_tensors);

  auto file = engine::GgufModelFile::open(out);
  const engine::GgufFile& g = file->gguf();
  const engine::Hparams hp = engine::Hparams::from_gguf(g);
  EXPECT_EQ(hp.arch, ac.arch);
  EXPECT_EQ(hp.n_vocab, spec.n_vocab);
  EXPECT_EQ(hp.n_embd, spec.n_embd);
  EXPECT_EQ(hp.n_layer, spec.n_layer);
  EXPECT_EQ(hp.n_head, spec.n_head);
  EXPECT_EQ(hp.n_head_kv, spec.n_head_kv);
  EXPECT_EQ(hp.n_ff, spec.n_ff);
  EXPECT_EQ(hp.head_dim, spec.hd());
  EXPECT_EQ(hp.rope.n_rot, spec.hd());
  EXPECT_EQ(hp.n_ctx_train, spec.n_ctx);
  EXPECT_FLOAT_EQ(hp.rms_eps, static_cast<float>(spec.rms_eps));
  EXPECT_FLOAT_EQ(hp.rope.freq_base, static_cast<float>(spec.rope_theta));

  // Tensors: every source tensor appears under its GGUF name with the same values (llama Q/K
  // rows permuted), and nothing else is in the file.
  EXPECT_EQ(g.tensors.size(), w.data.size());
  for (const auto& [hf, values] : w.data) {
    const std::string name = test::gguf_name(hf);
    const engine::TensorInfo* t = g.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    ASSERT_EQ(t->type, kernels::DType::F32) << name;
    ASSERT_EQ(static_cast<size_t>(t->n_elements()), values.size()) << name;
    const auto& shape = w.shape.at(hf);
    EXPECT_EQ(t->ne[0], shape.back()) << name;
    const bool permuted = std::string(ac.arch) == "llama" && (name.find("attn_q.weight") != std::string::npos ||
                                                              name.find("attn_k.weight") != std::string::npos);
    const int64_t heads = name.find("attn_q") != std::string::npos ? spec.n_head : spec.n_head_kv;
    const std::vector<float> expect = permuted ? test::permute_rows_for_gguf(values, heads, spec.hd(), shape.back()) : values;
    const auto* got = reinterpret_cast<const float*>(file->tensor_data(*t));
    EXPECT_EQ(std::memcmp(got, expect.data(), expect.size() * sizeof(float)), 0) << name << " differs from the source";
  }
  EXPECT_EQ(g.find_tensor("output.weight") == nullptr, spec.tied);

  // Forward: the engine on the GGUF vs the HF semantics on the unconverted weights.
  std::mt19937 rng(3);
  std::vector<int32_t> ids(12);
  for (auto& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint32_t>(spec.n_vocab));
  const std::vector<float> ref = test::hf_forward(spec, w, ids);
  const std::vector<float> ours = test::engine_logits(out, ids);
  ASSERT_EQ(ours.size(), ref.size());
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(ref[i])));
    max_diff = std::max(max_diff, std::abs(static_cast<double>(ref[i]) - ours[i]));
  }
  EXPECT_GT(max_ref, 0.5) << "logits too small to be a meaningful comparison";
  EXPECT_LT(max_diff, 1e-4 * std::max(1.0, max_ref)) << ac.label << ": max |logit| " << max_ref;

  // Tokenizer: the converted vocabulary encodes like the source definition.
  auto tk = engine::Tokenizer::from_gguf(g);
  EXPECT_EQ(tk->n_vocab(), spec.n_vocab);
  EXPECT_EQ(tk->token_text(static_cast<int32_t>(spec.n_vocab - 1)), "[PAD" + std::to_string(spec.n_vocab - 1) + "]");
  if (tok == Tok::Spm) {
    EXPECT_EQ(tk->model_type(), "llama");
    size_t byte_tokens = 0;
    for (const std::string& s : spm_strings()) {
      const auto want = test::spm_encode(spm, s, true);
      EXPECT_EQ(tk->encode(s, true, false), want) << "'" << s << "'";
      for (int32_t id : want) byte_tokens += spm.pieces[static_cast<size_t>(id)].type == 6;
    }
    EXPECT_GT(byte_tokens, 0u) << "the strings should exercise byte fallback";
    EXPECT_LT(test::spm_encode(spm, spm_strings()[0], false).size(), spm_strings()[0].size() / 2) << "merges should apply";
  } else {
    EXPECT_EQ(tk->model_type(), "gpt2");
    EXPECT_EQ(tk->pre_type(), ac.bpe_pre);
    EXPECT_NE(g.get_string("tokenizer.chat_template").value_or("").find("<|im_start|>"), std::string::npos);
    EXPECT_EQ(tk->eos(), tk->find_token("<|endoftext|>"));
    EXPECT_TRUE(tk->is_control(tk->find_token("<|im_end|>")));
    for (const std::string& s : bpe_strings())
      EXPECT_EQ(tk->encode(s, true, true), test::bpe_encode(bpe, s)) << "'" << s << "'";
    EXPECT_LT(test::bpe_encode(bpe, bpe_strings()[0]).size(), bpe_strings()[0].size() / 2) << "merges should apply";
  }
}

INSTANTIATE_TEST_SUITE_P(AllArchs, ConvertArch,
                         ::testing::Combine(::testing::Values(0, 1, 2, 3), ::testing::Values(Tok::Spm, Tok::Bpe)),
                         [](const auto& info) {
                           return std::string(arch_cases()[static_cast<size_t>(std::get<0>(info.param))].label) +
                                  (std::get<1>(info.param) == Tok::Spm ? "_spm" : "_bpe");
                         });

}  // namespace
}  // namespace zen
