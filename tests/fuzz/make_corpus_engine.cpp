// Writes the seed corpus of the engine and beacon fuzz targets into the folder given as
// argv[1] (tests/fuzz/corpus): tiny GGUF files (a model header, SPM and BPE vocabularies),
// safetensors files, authentic beacons, tokenizer texts, node config files and API
// request bodies.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "engine/gguf_writer.h"
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_keys.h"
#include "tests/fuzz/fuzz_vocab.h"
#include "transport/discovery_beacon.h"

namespace fs = std::filesystem;
using namespace zen;

namespace {

void write(const fs::path& p, const void* data, size_t n) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}
template <class Bytes>
void write(const fs::path& p, const Bytes& b) {
  write(p, b.data(), b.size());
}

std::vector<std::byte> floats(size_t n) {
  std::vector<std::byte> out(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(i) * 0.25f - 1.0f;
    std::memcpy(out.data() + i * 4, &f, 4);
  }
  return out;
}

// A llama header with a couple of tiny tensors (not a runnable model: enough for Hparams).
engine::GgufWriter tiny_model() {
  engine::GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "fuzz-tiny");
  w.set_u32("llama.context_length", 64);
  w.set_u32("llama.embedding_length", 8);
  w.set_u32("llama.block_count", 1);
  w.set_u32("llama.feed_forward_length", 16);
  w.set_u32("llama.attention.head_count", 2);
  w.set_u32("llama.attention.head_count_kv", 1);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.add_tensor("token_embd.weight", kernels::DType::F32, {8, 4}, floats(32));
  w.add_tensor("output_norm.weight", kernels::DType::F32, {8}, floats(8));
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_corpus_engine <corpus dir>\n";
    return 2;
  }
  const fs::path dir = argv[1];

  write(dir / "gguf/model", tiny_model().to_bytes());
  write(dir / "gguf/spm", engine::fuzz::spm_vocab().to_bytes());
  write(dir / "gguf/bpe", engine::fuzz::bpe_vocab("gpt-2").to_bytes());
  auto mixed = tiny_model();  // a header and a vocabulary together, with every scalar type
  mixed.set_i32("fuzz.i32", -7);
  mixed.set_u64("fuzz.u64", 1ull << 40);
  mixed.set_bool("fuzz.bool", true);
  mixed.set_i32s("fuzz.i32s", {1, -2, 3});
  mixed.set_strings("tokenizer.ggml.tokens", {"<unk>", "a", "b"});
  mixed.set_string("tokenizer.ggml.model", "llama");
  write(dir / "gguf/mixed", mixed.to_bytes());

  using engine::StDType;
  std::vector<engine::StWriteTensor> st = {
      {"a.weight", StDType::F32, {2, 3}, floats(6)},
      {"b.bias", StDType::F16, {4}, std::vector<std::byte>(8, std::byte{0x3c})},
  };
  write(dir / "safetensors/two", engine::write_safetensors(st, {{"format", "pt"}}));
  write(dir / "safetensors/empty", engine::write_safetensors({}));
  st.push_back({"c", StDType::BF16, {1, 1, 2}, std::vector<std::byte>(4, std::byte{0x40})});
  write(dir / "safetensors/three", engine::write_safetensors(st));

  const transport::SecretKey key = transport::derive_discovery_key(transport::fuzz::beacon_secret());
  transport::PublicKey pk{};
  pk.fill(7);
  transport::Beacon b;
  b.name = "node-a";
  b.tcp_port = 7700;
  b.public_key = pk;
  b.timestamp_ms = 1'700'000'000'000ull;
  b.nonce.fill(3);
  write(dir / "beacon/worker", transport::encode_beacon(b, key));
  b.role = transport::BeaconRole::coordinator;
  b.name = std::string(64, 'z');
  write(dir / "beacon/coordinator", transport::encode_beacon(b, key));

  write(dir / "tokenizer/ascii", std::string("Hello world, the abc 12 and <s> </s> <tag>!"));
  write(dir / "tokenizer/special", std::string("<|im_start|>user\n  hi  there<|im_end|><|endoftext|>"));
  write(dir / "tokenizer/utf8", std::string("caf\xC3\xA9 \xE2\x96\x81 \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87 \xFF\xC3"));
  write(dir / "tokenizer/digits", std::string("3.14159 x=12345678 don't I'm 'll\t\r\n"));

  write(dir / "config/worker", std::string(
      "name = \"w1\"\nrole = \"worker\"\nlisten = \"0.0.0.0:7700\"\n"
      "cluster_secret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n"
      "peers = [\"10.0.0.2:7700\", \"[::1]:7701\"]\nthreads = 4\nmemory = \"2GiB\"\n"
      "[discovery]\nenabled = true\nport = 7701\ninterval = \"2s\"\ntargets = [\"255.255.255.255\"]\n"));
  write(dir / "config/coordinator", std::string(
      "role = \"coordinator\"\nmodel = \"m.gguf\"\nhttp = \"127.0.0.1:8080\"\n"
      "cluster_secret_file = \"secret\"\napi_keys = [\"k1\"]\nactivation_type = \"f16\"\n"
      "layer_split = [1, 2]\nheartbeat_interval = \"1s\"\nfailure_timeout = \"3s\"\n"
      "[limits]\nmax_request_bytes = 1048576\nmax_sequences = 8\nrequest_timeout = \"10m\"\n"));
  write(dir / "http_json/completion", std::string(
      R"({"model": "fuzz", "prompt": "the abc", "max_tokens": 8, "temperature": 0.7, "top_p": 0.9,)"
      R"( "stop": ["\n", "12"], "seed": 3, "stream": true, "stream_options": {"include_usage": true}})"));
  write(dir / "http_json/chat", std::string(
      R"({"model": "fuzz", "messages": [{"role": "system", "content": "be brief"},)"
      R"( {"role": "user", "content": [{"type": "text", "text": "hi thére"}]}], "max_tokens": 4,)"
      R"( "top_k": 40, "frequency_penalty": 0, "n": 1, "response_format": {"type": "text"}})"));
  write(dir / "http_json/tokens", std::string(R"({"prompt": [1, 2, 3, 97], "max_tokens": 1, "stop": "x"})"));
  std::cout << "wrote seeds under " << dir << "\n";
  return 0;
}
