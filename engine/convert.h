// `zen convert`: a Hugging Face checkpoint directory -> one GGUF file the engine (and
// llama.cpp) loads.
//
// Input: config.json (LlamaForCausalLM, MistralForCausalLM -> "llama"; Qwen2ForCausalLM ->
// "qwen2"; Qwen3ForCausalLM -> "qwen3"), the weights as *.safetensors (sharded ones through
// model.safetensors.index.json) in F32, F16 or BF16, and a tokenizer: tokenizer.model
// (SentencePiece -> tokenizer.ggml.model "llama"), else tokenizer.json (byte-level BPE ->
// "gpt2"), plus tokenizer_config.json for special tokens, flags and the chat template.
//
// Layout change: Hugging Face Llama checkpoints store each head's rotary pairs as halves
// (dimension i pairs with i + head_dim/2, "rotate_half"); the GGUF llama architecture rotates
// adjacent pairs (2i, 2i+1). So attn_q/attn_k rows are permuted per head:
//   gguf_row(h*hd + 2*i + j) = hf_row(h*hd + j*hd/2 + i),  i < hd/2, j in {0, 1}
// (heads = n_head for Q, n_head_kv for K). qwen2/qwen3 rotate halves in GGUF too (NEOX), so
// their tensors are copied unchanged. Everything else keeps its bytes: a row-major HF
// [out, in] matrix is GGUF ne = {in, out}.
//
// Tensors are read from the memory maps and converted one at a time while the output is
// written, so a checkpoint larger than RAM converts; memory is bounded by a slab of rows.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

#include "kernels/types.h"

namespace zen::engine {

struct ConvertOptions {
  // f32, f16, bf16, any quantization mix (q8_0, q4_K_M, ...), or "auto": the checkpoint's own
  // float type (f32, f16 or bf16: the type most of its matrices have).
  std::string outtype = "auto";
  int threads = 1;
  std::string name;  // general.name (default: config.json's _name_or_path, else the folder name)
};

struct ConvertProgress {
  size_t done = 0, total = 0;  // tensors written so far / in all
  const char* name = "";       // GGUF name of the tensor being written
  kernels::DType type = kernels::DType::F32;
};

struct ConvertSummary {
  std::string arch;            // llama, qwen2, qwen3
  std::string tokenizer;       // llama (SentencePiece) or gpt2 (BPE)
  std::string pre;             // tokenizer.ggml.pre for BPE
  std::string outtype;         // the mix written
  size_t n_tensors = 0;
  bool tied_output = false;
};

// Throws std::runtime_error (or a parser error) with a clear message for an unsupported
// architecture, dtype, tokenizer or a malformed file. Writes `out` atomically.
ConvertSummary convert_checkpoint(const std::string& dir, const std::string& out, const ConvertOptions& opts,
                                  const std::function<void(const ConvertProgress&)>& progress = {});

}  // namespace zen::engine
