#pragma once
// MeZO's perturbed weights θ + c·z read by the forward pass one tensor at a time (a
// WeightSource): each view is made on all threads just before its product, into one of a few
// reused buffers, and no perturbation is ever written into θ: the +ε and −ε passes need no
// restore. A step's update is deferred to the next step's first pass: the sweep that makes a
// tensor's view updates that tensor first, so θ is read once per pass and never swept alone.
// Or (train_mezo's arithmetic restore) the perturbation written into θ in place, and the
// restore deferred with the update: two sweeps a step, where train_mezo makes four.
#include <array>
#include <vector>

#include "ane/mezo/perturb.hpp"
#include "ane/model/weight_source.hpp"

namespace ane {

class PerturbedWeights : public WeightSource {
public:
    // Draws the next step's z (Rademacher) over `params`; a deferred update keeps its own z.
    void draw(const std::vector<ParamSpan>& params, std::uint64_t seed);
    // The z drawn last.
    const StepDirection& direction() const { return z_[current_]; }
    // The offset c of the next forward pass (views made before are no longer valid).
    void set_scale(float c);
    // θ ← (θ + restore·z)·keep + coeff·z for the z drawn last (keep = 1 − lr·wd on decaying
    // buffers, else 1), left to the passes that follow: a tensor a pass reads whole is updated
    // in the sweep that makes its view, its rows are read updated, perturb_in_place() updates
    // every tensor, and flush() updates the rest. Flushes an update deferred before.
    void defer_update(float coeff, float lr_times_wd, float restore = 0.0f);
    // θ ← θ + c·z in place for every drawn buffer (the deferred update applied first, in the
    // same sweep). Views made before are no longer valid.
    void perturb_in_place(float c);
    // Applies a deferred update to every tensor not yet updated. Call before θ is read
    // directly (evaluation, saving); true when there was one.
    bool flush();

    // θ + c·z for a drawn buffer (updated first); any other tensor as it is.
    const float* view(const Tensor& t) override;
    void row(const Tensor& t, std::int64_t r, float* out) override;
    // A drawn matrix's rows θ + c·z (updated first, as view() does) into a product's panels.
    WeightRows rows_of(const Tensor& t) override;

private:
    std::array<StepDirection, 2> z_;
    int current_ = 0;
    float c_ = 0.0f;
    struct Deferred {
        bool on = false;
        float coeff = 0.0f, lr_times_wd = 0.0f, restore = 0.0f;
        int slot = 0;            // z_[slot]: the z it was deferred with
        std::vector<bool> done;  // by buffer: already updated
    } deferred_;
    // The deferred update of buffer b in a sweep (keep, coeff and the update's z), or none.
    SignedSweep pending(std::size_t b) const;
    // Views made in turn; the forward holds at most three at once (q, k, v or w1, w3, w2).
    // The turn restarts with each pass, so a tensor lands in the same buffer every pass.
    std::array<std::vector<float>, 4> views_;
    std::size_t turn_ = 0;
};

}  // namespace ane
