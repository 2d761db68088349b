#pragma once
// From-scratch initialization exactly as AutoANE's train.m (spec/model.md §10).
#include "ane/weights.hpp"

namespace ane {

// srand48(seed); per layer Wq Wk Wv Wo W1 W2 W3 uniform with the spec's scales, then the
// embedding (and an untied classifier) at 0.02; RMSNorm gains 1.
Weights init_weights(const ModelConfig& config, long seed);

}  // namespace ane
