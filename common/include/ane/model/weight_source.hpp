#pragma once
// What a forward pass reads in place of a weight tensor. MeZO's perturbed weights θ + c·z are
// made this way one tensor at a time, just before the product that reads them, so that θ
// itself is never written by a perturbation (and nothing has to be undone).
#include <cstdint>

#include "ane/device/device.hpp"
#include "ane/tensor.hpp"

namespace ane {

class WeightSource {
public:
    virtual ~WeightSource() = default;
    // The values the forward reads for `t`; valid until the fourth next call of view().
    virtual const float* view(const Tensor& t) = 0;
    // Row r of matrix `t` as the forward reads it, into out[t.cols()] (the embedding lookup).
    virtual void row(const Tensor& t, std::int64_t r, float* out) = 0;
    // For matrix `t` read whole by one product: its rows made on demand, a panel at a time
    // (Device::made_matmul_forward), for a pass that then never calls view(t); empty when this
    // source has no such maker for `t` (view() then).
    virtual WeightRows rows_of(const Tensor& /*t*/) { return {}; }
};

// `t` as the forward reads it: through the source when there is one, else in place.
inline const float* read(WeightSource* source, const Tensor& t) { return source ? source->view(t) : t.data(); }

}  // namespace ane
