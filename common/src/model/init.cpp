#include "ane/model/init.hpp"

#include <cmath>

#include "ane/sampling.hpp"

namespace ane {

Weights init_weights(const ModelConfig& c, long seed) {
    Weights w = Weights::zeros(c);
    Drand48 rng(seed);
    auto fill = [&](Tensor& t, float scale) {
        for (auto& x : t.span()) x = static_cast<float>(double(scale) * (2.0 * rng.next() - 1.0));
    };
    const float res = 1.0f / std::sqrt(2.0f * float(c.layers));
    const float s_d = 1.0f / std::sqrt(float(c.dim)), s_q = 1.0f / std::sqrt(float(c.q_dim()));
    const float s_h = 1.0f / std::sqrt(float(c.hidden));
    for (auto& l : w.layers) {
        fill(l.wq, s_d);
        fill(l.wk, s_d);
        fill(l.wv, s_d);
        fill(l.wo, s_q * res);
        fill(l.w1, s_h);
        fill(l.w2, s_d * res);
        fill(l.w3, s_h);
        l.rms_att.fill(1.0f);
        l.rms_ffn.fill(1.0f);
        if (c.qk_norm) {
            l.q_norm.fill(1.0f);
            l.k_norm.fill(1.0f);
        }
    }
    fill(w.embed, 0.02f);
    if (!c.tied) fill(w.classifier, 0.02f);
    w.rms_final.fill(1.0f);
    return w;
}

}  // namespace ane
