#include "ane/optim.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "ane/parallel.hpp"
#include "ane/simd_clones.hpp"

namespace ane {

float LrSchedule::at(int step) const {
    if (step < warmup) return max_lr * float(step + 1) / float(warmup);
    const float min_lr = min_frac * max_lr;
    if (total <= warmup) return min_lr;
    const double d = std::min(1.0, double(step - warmup) / double(total - warmup));
    return min_lr + float(0.5 * (1.0 + std::cos(std::numbers::pi * d))) * (max_lr - min_lr);
}

float LrSchedule::at_fraction(int step, double fraction) const {
    const float min_lr = min_frac * max_lr;
    const double d = std::clamp(fraction, 0.0, 1.0);
    const float cosine = min_lr + float(0.5 * (1.0 + std::cos(std::numbers::pi * d))) * (max_lr - min_lr);
    if (step < warmup) return std::min(cosine, max_lr * float(step + 1) / float(warmup));
    return cosine;
}

bool decays(const std::string& name) { return !is_norm_gain(name) && !is_bias(name); }

namespace {
constexpr std::int64_t kBlock = 1 << 14;  // elements a thread takes at a time
}

void zero_grads(Weights& grads) {
    grads.for_each([](const std::string&, Tensor& t) { t.zero(); });
}

namespace {

ANE_SIMD_CLONES double block_sum_of_squares(const float* q, std::int64_t m) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // independent chains: not bound by the add latency
    std::int64_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int k = 0; k < 8; ++k) lane[k] += double(q[i + k]) * double(q[i + k]);
    for (; i < m; ++i) lane[0] += double(q[i]) * double(q[i]);
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// AdamW as PyTorch writes it: p -= lr (m / bc1) / (sqrt(v) / sqrt(bc2) + eps) + lr wd p, with
// the bias corrections as multipliers (one division and one square root per element).
ANE_SIMD_CLONES void adamw_block(float* p, const float* g, float* m, float* v, std::int64_t n, float b1, float b2,
                                 float eps, float step, float inv_sqrt_bc2, float decay, float grad_scale) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) {
        const float gi = g[i] * grad_scale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps) + decay * p[i];
    }
}

}  // namespace

double sum_of_squares(const float* p, std::int64_t n) {
    // Blocks summed in vector lanes, the blocks in a fixed order per thread: the same bits for
    // the same thread count, as parallel_sum promises.
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
    return parallel_sum<double>(blocks, [p, n](std::int64_t b) {
        return block_sum_of_squares(p + b * kBlock, std::min(kBlock, n - b * kBlock));
    });
}

double global_grad_norm(const Weights& grads) {
    double total = 0.0;
    grads.for_each([&](const std::string&, const Tensor& t) { total += sum_of_squares(t.data(), t.numel()); });
    return std::sqrt(total);
}

void adamw_tensor(float* p, const float* g, float* m, float* v, std::int64_t n, int t, float lr,
                  const AdamWConfig& cfg, float weight_decay, float grad_scale) {
    const float bc1 = 1.0f - std::pow(cfg.beta1, float(t));
    const float bc2 = 1.0f - std::pow(cfg.beta2, float(t));
    const float step = lr / bc1, inv_sqrt_bc2 = 1.0f / std::sqrt(bc2), decay = lr * weight_decay;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; i += kBlock)
        adamw_block(p + i, g + i, m + i, v + i, std::min(kBlock, n - i), cfg.beta1, cfg.beta2, cfg.eps, step,
                    inv_sqrt_bc2, decay, grad_scale);
}

void adamw_update(Weights& weights, const Weights& grads, AdamMoments& moments, int t, float lr,
                  const AdamWConfig& cfg, float grad_scale) {
    auto& g_all = const_cast<Weights&>(grads);
    weights.for_each([&](const std::string& name, Tensor& w) {
        adamw_tensor(w.data(), g_all.find(name)->data(), moments.m.find(name)->data(), moments.v.find(name)->data(),
                     w.numel(), t, lr, cfg, decays(name) ? cfg.weight_decay : 0.0f, grad_scale);
    });
}

}  // namespace ane
