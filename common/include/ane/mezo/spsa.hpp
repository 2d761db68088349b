#pragma once
// The zeroth-order gradient estimates of MeZO (spec/mezo.md §3, §6) on a set of buffers,
// independent of what the loss is: the trainer passes the model's loss, tests a quadratic.
#include <cstdint>
#include <functional>
#include <vector>

#include "ane/mezo/perturb.hpp"
#include "ane/mezo/perturbed_weights.hpp"

namespace ane {

// A copy of the trainable buffers, so that a perturbation is undone bit for bit. Without
// one, θ + εz − 2εz + εz returns θ only up to float rounding (train_mezo's behaviour).
class ParamSnapshot {
public:
    void save(const std::vector<ParamSpan>& params);
    void restore(const std::vector<ParamSpan>& params) const;
    std::size_t bytes() const { return data_.size() * sizeof(float); }
    const float* data() const { return data_.data(); }
    // Room for the buffers, to be filled by the caller in save()'s layout.
    float* prepare(const std::vector<ParamSpan>& params);

private:
    std::vector<float> data_;
};

struct SpsaHooks {
    std::function<double()> loss;  // the loss at the current parameters
    std::function<void()> sync;    // after a sweep whose parameters a loss or the caller will see
    ParamSnapshot* snapshot = nullptr;  // exact restores when set
};

struct SpsaEstimate {
    double loss_plus = 0, loss_minus = 0;
    double proj_grad = 0;  // (L+ − L−) / 2ε: the directional derivative along z
};

// θ += εz; L+; θ −= 2εz; L−; then θ restored: from the snapshot, or by θ += εz.
SpsaEstimate spsa_two_sided(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps, Direction direction,
                            const SpsaHooks& hooks);

// The update that ends a step: θ ← θ·(1 − lr·wd) on decaying buffers, then θ += coeff·z
// (coeff = −lr·g); coeff 0 and lr_times_wd 0: no update (a skipped step).
struct ZoUpdate {
    float coeff = 0, lr_times_wd = 0;
};

// spsa_two_sided and its update in one: z drawn once into `z` and applied on all threads, and
// the restore and the update done in one sweep. `update` sees the estimate and returns the
// update. θ ends where spsa_two_sided followed by zo_update leaves it, bit for bit.
SpsaEstimate spsa_two_sided_update(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps,
                                   Direction direction, const SpsaHooks& hooks, StepDirection& z,
                                   const std::function<ZoUpdate(const SpsaEstimate&)>& update);

// The same step with θ never perturbed in place: `loss` runs a forward that reads its weights
// through `weights`, at θ + εz then θ − εz (z drawn there, Rademacher). The update is deferred
// (PerturbedWeights::defer_update): the next step's first pass applies it as it reads θ, and
// weights.flush() applies it before θ is read otherwise. The two losses equal those of
// spsa_two_sided up to the rounding of θ + εz − 2εz against θ − εz; θ needs no restore, so it
// is exact without a copy.
SpsaEstimate spsa_two_sided_viewed(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps,
                                   const std::function<double()>& loss, PerturbedWeights& weights,
                                   const std::function<ZoUpdate(const SpsaEstimate&)>& update);

// train_mezo's step (spsa_two_sided, arithmetic restore, then zo_update) in two sweeps, θ
// perturbed in place through `weights` (Rademacher): the step's restore and update are
// deferred into the next step's +εz sweep (PerturbedWeights::defer_update), and until then θ
// holds θ − εz: weights.flush() before θ is read otherwise. Every float as train_mezo's four
// sweeps make it.
SpsaEstimate spsa_two_sided_in_place(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps,
                                     const SpsaHooks& hooks, PerturbedWeights& weights,
                                     const std::function<ZoUpdate(const SpsaEstimate&)>& update);
// The seeds of FZOO's one-sided estimates: seed + k·999983.
inline std::uint64_t one_sided_seed(std::uint64_t seed, int k) { return seed + std::uint64_t(k) * 999983ull; }

// For k < n: θ += εz_k; L_k; θ restored. Returns g_k = (L_k − loss0) / ε.
std::vector<double> spsa_one_sided(const std::vector<ParamSpan>& params, std::uint64_t seed, int n, float eps,
                                   Direction direction, double loss0, const SpsaHooks& hooks);

// θ ← θ·(1 − lr·wd) on decaying buffers, then θ += coeff·z(seed): coeff = −lr·g.
void zo_update(const std::vector<ParamSpan>& params, std::uint64_t seed, float coeff, Direction direction,
               float lr_times_wd = 0.0f);

}  // namespace ane
