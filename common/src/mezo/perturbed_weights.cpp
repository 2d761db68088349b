#include "ane/mezo/perturbed_weights.hpp"

#include <cstring>

namespace ane {

void PerturbedWeights::set_scale(float c) {
    c_ = c;
    turn_ = 0;
}

const float* PerturbedWeights::view(const Tensor& t) {
    const std::int64_t g = z_.offset_of(t.data(), t.numel());
    if (g < 0) return t.data();
    std::vector<float>& out = views_[turn_++ % views_.size()];
    if (out.size() < std::size_t(t.numel())) out.resize(std::size_t(t.numel()));
    z_.perturbed_copy(t.data(), g, t.numel(), c_, out.data());
    return out.data();
}

void PerturbedWeights::row(const Tensor& t, std::int64_t r, float* out) {
    const std::int64_t g = z_.offset_of(t.data(), t.numel());
    if (g < 0) {
        std::memcpy(out, t.row(r), sizeof(float) * std::size_t(t.cols()));
        return;
    }
    z_.perturbed_copy(t.row(r), g + r * t.cols(), t.cols(), c_, out);
}

}  // namespace ane
