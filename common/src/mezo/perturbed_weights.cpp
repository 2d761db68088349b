#include "ane/mezo/perturbed_weights.hpp"

#include <algorithm>
#include <cstring>

namespace ane {

void PerturbedWeights::draw(const std::vector<ParamSpan>& params, std::uint64_t seed) {
    // A deferred update is applied before its z is redrawn, or when its buffers are not these
    // (its indices and offsets would not be theirs).
    const auto same = [](const ParamSpan& a, const ParamSpan& b) { return a.data == b.data && a.size == b.size; };
    const std::vector<ParamSpan>& held = z_[deferred_.slot].buffers();
    if (deferred_.on && (deferred_.slot != current_ ||
                         !std::equal(params.begin(), params.end(), held.begin(), held.end(), same)))
        flush();
    current_ ^= 1;
    z_[current_].draw(params, seed, Direction::Rademacher);
}

void PerturbedWeights::set_scale(float c) {
    c_ = c;
    turn_ = 0;
}

void PerturbedWeights::defer_update(float coeff, float lr_times_wd, float restore) {
    flush();
    if (coeff == 0.0f && lr_times_wd == 0.0f && restore == 0.0f) return;
    deferred_.on = true;
    deferred_.coeff = coeff;
    deferred_.lr_times_wd = lr_times_wd;
    deferred_.restore = restore;
    deferred_.slot = current_;
    deferred_.done.assign(direction().buffers().size(), false);
}

SignedSweep PerturbedWeights::pending(std::size_t b) const {
    SignedSweep s;
    if (!deferred_.on || deferred_.done[b]) return s;
    const StepDirection& z = z_[deferred_.slot];
    s.update = &z;
    s.restore = deferred_.restore;
    s.coeff = deferred_.coeff;
    if (deferred_.lr_times_wd != 0.0f && z.buffers()[b].decay) s.keep = 1.0f - deferred_.lr_times_wd;
    return s;
}

bool PerturbedWeights::flush() {
    if (!deferred_.on) return false;
    const StepDirection& z = z_[deferred_.slot];
    for (std::size_t b = 0; b < deferred_.done.size(); ++b) {
        SignedSweep s = pending(b);
        if (!s.update) continue;
        float* x = z.buffers()[b].data;
        s.x_out = x;
        signed_sweep(x, z.offset(b), z.buffers()[b].size, s);
    }
    deferred_.on = false;
    return true;
}

void PerturbedWeights::perturb_in_place(float c) {
    const StepDirection& z = direction();
    for (std::size_t b = 0; b < z.buffers().size(); ++b) {
        SignedSweep s = pending(b);
        if (s.update) deferred_.done[b] = true;
        s.view = &z;
        s.c = c;
        s.out = z.buffers()[b].data;
        signed_sweep(s.out, z.offset(b), z.buffers()[b].size, s);
    }
    deferred_.on = false;  // every buffer updated
    turn_ = 0;
}

const float* PerturbedWeights::view(const Tensor& t) {
    const StepDirection& z = direction();
    const std::int64_t b = z.index_of(t.data(), t.numel());
    if (b < 0) return t.data();
    std::vector<float>& out = views_[turn_++ % views_.size()];
    if (out.size() < std::size_t(t.numel())) out.resize(std::size_t(t.numel()));
    SignedSweep s = pending(std::size_t(b));
    if (s.update) {
        s.x_out = z.buffers()[std::size_t(b)].data;  // θ itself, updated in place
        deferred_.done[std::size_t(b)] = true;
    }
    s.view = &z;
    s.c = c_;
    s.out = out.data();
    signed_sweep(t.data(), z.offset(std::size_t(b)), t.numel(), s);
    return out.data();
}

WeightRows PerturbedWeights::rows_of(const Tensor& t) {
    const StepDirection& z = direction();
    const std::int64_t b = z.index_of(t.data(), t.numel());
    if (b < 0) return {};
    SignedSweep s = pending(std::size_t(b));
    if (s.update) deferred_.done[std::size_t(b)] = true;  // every row is made (and θ updated) by the product
    s.view = &z;
    s.c = c_;
    float* theta = z.buffers()[std::size_t(b)].data;
    const std::int64_t first = z.offset(std::size_t(b)), cols = t.cols();
    return [s, theta, first, cols](std::int64_t r0, std::int64_t r1, float* out) {
        SignedSweep panel = s;
        panel.out = out;
        if (panel.update) panel.x_out = theta + r0 * cols;
        signed_sweep(theta + r0 * cols, first + r0 * cols, (r1 - r0) * cols, panel);
    };
}

void PerturbedWeights::row(const Tensor& t, std::int64_t r, float* out) {
    const StepDirection& z = direction();
    const std::int64_t b = z.index_of(t.data(), t.numel());
    if (b < 0) {
        std::memcpy(out, t.row(r), sizeof(float) * std::size_t(t.cols()));
        return;
    }
    SignedSweep s = pending(std::size_t(b));  // the row as updated, θ itself left to a later sweep
    s.view = &z;
    s.c = c_;
    s.out = out;
    signed_sweep(t.row(r), z.offset(std::size_t(b)) + r * t.cols(), t.cols(), s);
}

}  // namespace ane
