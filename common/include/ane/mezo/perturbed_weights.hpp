#pragma once
// MeZO's perturbed weights θ + c·z read by the forward pass one tensor at a time (a
// WeightSource): each view is made on all threads just before its product, into one of a few
// reused buffers, and θ is only ever read. The +ε and −ε passes then need no restore, and the
// step touches θ once, in its update.
#include <array>
#include <vector>

#include "ane/mezo/perturb.hpp"
#include "ane/model/weight_source.hpp"

namespace ane {

class PerturbedWeights : public WeightSource {
public:
    // `z` (drawn, Rademacher) must outlive this.
    explicit PerturbedWeights(const StepDirection& z) : z_(z) {}
    // The offset c of the next forward pass (views made before are no longer valid).
    void set_scale(float c);
    // θ + c·z for a drawn buffer; any other tensor as it is.
    const float* view(const Tensor& t) override;
    void row(const Tensor& t, std::int64_t r, float* out) override;

private:
    const StepDirection& z_;
    float c_ = 0.0f;
    // Views made in turn; the forward holds at most three at once (q, k, v or w1, w3, w2).
    // The turn restarts with each pass, so a tensor lands in the same buffer every pass.
    std::array<std::vector<float>, 4> views_;
    std::size_t turn_ = 0;
};

}  // namespace ane
