#pragma once
// The kernels an ANE device compiles for a model: one per shape for training in each mode
// (spec/ane.md §6: full 10, cpu-bwd 3, matmul 5), or MeZO's baked conv kernels, three per layer.
#include <string>
#include <vector>

#include "ane/device/device.hpp"
#include "ane/mil/generators.hpp"
#include "ane/weights.hpp"

namespace ane::mil {

std::vector<Kernel> training_kernels(const ModelConfig& config, AneMode mode, int seq);
// Per layer: qkvConv, conv_wo and ffnConv with the layer's weights baked (names prefixed "layerN/").
std::vector<Kernel> baked_kernels(const Weights& weights, int seq);

}  // namespace ane::mil
