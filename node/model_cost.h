// GGUF facts -> the planner's cost structs (partition/ never sees engine types).
#pragma once
#include "engine/gguf.h"
#include "engine/model.h"
#include "partition/partition.h"

namespace zen::node {

// Per-layer weight bytes and FLOPs, embedding/head bytes, KV bytes per token and the hidden
// state size per hop (activation bytes per element: 4 for f32, 2 for f16/bf16).
partition::ModelCost model_cost(const engine::GgufFile& g, const engine::Hparams& hp, int activation_bytes = 4);

}  // namespace zen::node
