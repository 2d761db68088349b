#include "ane/mil/kernel_set.hpp"

namespace ane::mil {

namespace {
AttentionGeometry geometry(const ModelConfig& c, int seq) {
    return {c.dim, c.heads, c.kv_heads, c.head_dim, seq, c.rope_theta, c.rope_divisors()};
}
}  // namespace

std::vector<Kernel> training_kernels(const ModelConfig& c, AneMode mode, int S) {
    const int D = c.dim, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim();
    if (mode == AneMode::matmul)
        return {dynamic_matmul("wqFwd", D, Q, S), dynamic_matmul("wkvFwd", D, KV, S), dynamic_matmul("woFwd", Q, D, S),
                dynamic_matmul("w13Fwd", D, H, S), dynamic_matmul("w2Fwd", H, D, S)};
    std::vector<Kernel> k = {sdpa_forward(geometry(c, S)), dynamic_matmul("woFwd", Q, D, S),
                             ffn_fused(D, H, S, float(c.residual_scale))};
    if (mode == AneMode::cpu_bwd) return k;
    k.push_back(dynamic_matmul("ffnBwdW2t", D, H, S));
    k.push_back(two_matmul_backward("ffnBwdW13t", H, D, S));
    k.push_back(dynamic_matmul("wotBwd", D, Q, S));
    k.push_back(sdpa_backward1(geometry(c, S)));
    k.push_back(sdpa_backward2(geometry(c, S)));
    k.push_back(dynamic_matmul("qBwd", Q, D, S));
    k.push_back(two_matmul_backward("kvBwd", KV, D, S));
    return k;
}

std::vector<Kernel> baked_kernels(const Weights& w, int S) {
    const ModelConfig& c = w.config;
    std::vector<Kernel> out;
    for (int l = 0; l < c.layers; ++l) {
        const LayerWeights& L = w.layers[std::size_t(l)];
        const std::string prefix = "layer" + std::to_string(l) + "/";
        out.push_back(qkv_conv(c.dim, c.q_dim(), c.kv_dim(), S, L.wq.data(), L.wk.data(), L.wv.data()));
        out.push_back(conv1x1("conv_wo", c.q_dim(), c.dim, S, L.wo.data()));
        out.push_back(ffn_conv(c.dim, c.hidden, S, float(c.residual_scale), L.w1.data(), L.w3.data(), L.w2.data()));
        for (std::size_t k = out.size() - 3; k < out.size(); ++k) out[k].name = prefix + out[k].name;
    }
    return out;
}

}  // namespace ane::mil
