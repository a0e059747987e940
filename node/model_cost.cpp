#include "node/model_cost.h"

#include <cstdlib>

namespace zen::node {

partition::ModelCost model_cost(const engine::GgufFile& g, const engine::Hparams& hp, int activation_bytes) {
  partition::ModelCost mc;
  mc.layers.resize(static_cast<size_t>(hp.n_layer));
  for (const engine::TensorInfo& t : g.tensors) {
    if (t.name.rfind("blk.", 0) == 0) {
      const long il = std::strtol(t.name.c_str() + 4, nullptr, 10);
      if (il < 0 || il >= hp.n_layer) continue;
      auto& L = mc.layers[static_cast<size_t>(il)];
      L.weight_bytes += t.bytes;
      if (t.n_dims >= 2) L.flops_per_token += 2.0 * static_cast<double>(t.n_elements());
    } else if (t.name == "token_embd.weight") {
      mc.embed_bytes += t.bytes;
    } else if (t.name == "output.weight") {
      mc.head_bytes += t.bytes;
      mc.head_flops_per_token += 2.0 * static_cast<double>(t.n_elements());
    } else if (t.name == "output_norm.weight") {
      mc.head_bytes += t.bytes;
    }
  }
  if (!g.find_tensor("output.weight")) {
    mc.tied_embeddings = true;
    mc.head_bytes += mc.embed_bytes;
    mc.head_flops_per_token += 2.0 * static_cast<double>(hp.n_vocab * hp.n_embd);
  }
  const uint64_t kv = static_cast<uint64_t>(hp.kv_dim() + hp.v_dim()) * sizeof(float);
  for (auto& L : mc.layers) L.kv_bytes_per_token = kv;
  mc.hidden_bytes_per_token = static_cast<uint64_t>(hp.n_embd) * static_cast<uint64_t>(activation_bytes);
  return mc;
}

}  // namespace zen::node
