#pragma once
// AdamW with decoupled weight decay on matrices only, the warmup + cosine schedule, global-L2
// gradient clipping (spec/model.md §9).
#include "ane/checkpoint.hpp"
#include "ane/weights.hpp"

namespace ane {

struct AdamWConfig {
    float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

// Linear warmup over `warmup` steps to max_lr, then cosine to min_frac * max_lr at `total`.
struct LrSchedule {
    float max_lr = 3e-4f;
    int warmup = 100;
    int total = 10000;
    float min_frac = 0.1f;
    float at(int step) const;
    // A time-budgeted run: linear warmup over `warmup` steps, then the cosine over the
    // fraction of the budget spent (0..1) instead of the fraction of `total` steps.
    float at_fraction(int step, double fraction) const;
};

// Whether a tensor gets weight decay: the projections, the embedding and the classifier;
// not the RMSNorm gains.
bool decays(const std::string& tensor_name);

void zero_grads(Weights& grads);
// sqrt of the sum of squares of every gradient, accumulated in double; NaN/Inf propagate.
double global_grad_norm(const Weights& grads);
// Σ p_i² in double, on all threads (deterministic for a thread count).
double sum_of_squares(const float* p, std::int64_t n);

// AdamW on one buffer of n floats (the kernel of adamw_update; LoRA runs call it per tensor).
void adamw_tensor(float* p, const float* g, float* m, float* v, std::int64_t n, int t, float lr,
                  const AdamWConfig& config, float weight_decay, float grad_scale = 1.0f);

// One AdamW update at step t (1-based, for bias correction), with the gradients multiplied
// by grad_scale on the fly (loss-scale undo and clipping, without another pass over memory).
void adamw_update(Weights& weights, const Weights& grads, AdamMoments& moments, int t, float lr,
                  const AdamWConfig& config, float grad_scale = 1.0f);

}  // namespace ane
