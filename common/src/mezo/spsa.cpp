#include "ane/mezo/spsa.hpp"

#include <algorithm>

namespace ane {

void ParamSnapshot::save(const std::vector<ParamSpan>& params) {
    data_.resize(std::size_t(total_size(params)));
    float* out = data_.data();
    for (const auto& p : params) out = std::copy_n(p.data, p.size, out);
}

float* ParamSnapshot::prepare(const std::vector<ParamSpan>& params) {
    data_.resize(std::size_t(total_size(params)));
    return data_.data();
}

void ParamSnapshot::restore(const std::vector<ParamSpan>& params) const {
    const float* in = data_.data();
    for (const auto& p : params) {
        std::copy_n(in, p.size, p.data);
        in += p.size;
    }
}

SpsaEstimate spsa_two_sided(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps, Direction direction,
                            const SpsaHooks& hooks) {
    SpsaEstimate e;
    if (hooks.snapshot) hooks.snapshot->save(params);
    perturb(params, seed, eps, direction);
    hooks.sync();
    e.loss_plus = hooks.loss();
    perturb(params, seed, -2.0f * eps, direction);
    hooks.sync();
    e.loss_minus = hooks.loss();
    if (hooks.snapshot)  // no sync: an update or a sync follows
        hooks.snapshot->restore(params);
    else
        perturb(params, seed, eps, direction);
    e.proj_grad = (e.loss_plus - e.loss_minus) / (2.0 * double(eps));
    return e;
}

SpsaEstimate spsa_two_sided_update(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps,
                                   Direction direction, const SpsaHooks& hooks, StepDirection& z,
                                   const std::function<ZoUpdate(const SpsaEstimate&)>& update) {
    SpsaEstimate e;
    z.draw(params, seed, direction);
    z.apply(eps, hooks.snapshot ? hooks.snapshot->prepare(params) : nullptr);  // saving θ in the same sweep
    hooks.sync();
    e.loss_plus = hooks.loss();
    z.apply(-2.0f * eps);
    hooks.sync();
    e.loss_minus = hooks.loss();
    e.proj_grad = (e.loss_plus - e.loss_minus) / (2.0 * double(eps));
    const ZoUpdate u = update(e);
    if (hooks.snapshot)  // no sync: the caller syncs after the step
        z.update_from(hooks.snapshot->data(), u.coeff, u.lr_times_wd);
    else
        z.restore_and_update(eps, u.coeff, u.lr_times_wd);
    return e;
}

SpsaEstimate spsa_two_sided_viewed(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps,
                                   const std::function<double()>& loss, PerturbedWeights& weights,
                                   const std::function<ZoUpdate(const SpsaEstimate&)>& update) {
    SpsaEstimate e;
    weights.draw(params, seed);
    weights.set_scale(eps);
    e.loss_plus = loss();  // the update deferred by the step before is applied as θ is read
    weights.set_scale(-eps);
    e.loss_minus = loss();
    e.proj_grad = (e.loss_plus - e.loss_minus) / (2.0 * double(eps));
    const ZoUpdate u = update(e);
    weights.defer_update(u.coeff, u.lr_times_wd);
    return e;
}

SpsaEstimate spsa_two_sided_in_place(const std::vector<ParamSpan>& params, std::uint64_t seed, float eps,
                                     const SpsaHooks& hooks, PerturbedWeights& weights,
                                     const std::function<ZoUpdate(const SpsaEstimate&)>& update) {
    SpsaEstimate e;
    weights.draw(params, seed);
    weights.perturb_in_place(eps);  // the step before's restore and update first
    hooks.sync();
    e.loss_plus = hooks.loss();
    weights.perturb_in_place(-2.0f * eps);
    hooks.sync();
    e.loss_minus = hooks.loss();
    e.proj_grad = (e.loss_plus - e.loss_minus) / (2.0 * double(eps));
    const ZoUpdate u = update(e);
    weights.defer_update(u.coeff, u.lr_times_wd, eps);
    return e;
}

std::vector<double> spsa_one_sided(const std::vector<ParamSpan>& params, std::uint64_t seed, int n, float eps,
                                   Direction direction, double loss0, const SpsaHooks& hooks) {
    std::vector<double> g(static_cast<std::size_t>(n));
    if (hooks.snapshot) hooks.snapshot->save(params);
    for (int k = 0; k < n; ++k) {
        perturb(params, one_sided_seed(seed, k), eps, direction);
        hooks.sync();
        g[std::size_t(k)] = (hooks.loss() - loss0) / double(eps);
        if (hooks.snapshot)
            hooks.snapshot->restore(params);
        else
            perturb(params, one_sided_seed(seed, k), -eps, direction);
    }
    return g;
}

void zo_update(const std::vector<ParamSpan>& params, std::uint64_t seed, float coeff, Direction direction,
               float lr_times_wd) {
    decay(params, lr_times_wd);
    perturb(params, seed, coeff, direction);
}

}  // namespace ane
