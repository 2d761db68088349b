#pragma once
// The MIL programs of the ANE kernels (spec/ane.md §5), as text + weight blobs that Apple's
// runtime compiles unchanged and that mil::Interpreter runs. Every kernel has one fp16 input
// surface [1, C, 1, SP] and one output [1, OC, 1, S], both channel-major.
// Differences from the AutoANE anchors (spec §6), on purpose: RoPE θ comes from the model,
// grouped-query heads map query head h to KV head h / r as every other path, and the fused
// FFN conv kernel scales by α.
#include <cstddef>
#include <string>

#include "ane/mil/program.hpp"

namespace ane::mil {

// A span of every row of the input surface, or of output channels.
struct Region {
    int offset = 0, width = 0;
    std::string holds;     // "xnorm[c, 0..S)", "Wq[:, c]", ...
    bool weights = false;  // staged once per optimizer update, not written per call
};

struct Kernel {
    std::string name;  // "sdpaFwd", "ffnFused", "wqFwd", ...
    std::string text;  // the MIL program
    BlobMap blobs;     // "@model_path/weights/<file>.bin" -> 128-byte header + fp16
    int in_channels = 0, in_spatial = 0, out_channels = 0, out_spatial = 0;
    std::vector<Region> row;      // what each input row holds, by spatial offset
    std::vector<Region> outputs;  // what the output holds, by channel offset
    std::size_t input_bytes() const { return 2 * std::size_t(in_channels) * std::size_t(in_spatial); }
    std::size_t output_bytes() const { return 2 * std::size_t(out_channels) * std::size_t(out_spatial); }
};

// What the attention kernels need of the model.
struct AttentionGeometry {
    int dim = 0, heads = 0, kv_heads = 0, head_dim = 0, seq = 0;
    double rope_theta = 10000.0;
    std::vector<double> rope_divisors;  // rope scaling, empty when none
    int q_dim() const { return heads * head_dim; }
    int kv_dim() const { return kv_heads * head_dim; }
};

// §5.1: input [1, IC, 1, S + OC], row c = X[c, 0..S) | M[c, 0..OC); output Y = Mᵀ X [1, OC, 1, S].
Kernel dynamic_matmul(const std::string& name, int in_channels, int out_channels, int seq);
// §5.2: input [1, IC, 1, 2S + 2·OC], row c = dA | dB | A[c,:] | B[c,:]; output Aᵀ dA + Bᵀ dB.
// ffnBwdW13t (IC = hidden, OC = dim) and kvBwd (IC = kv_dim, OC = dim).
Kernel two_matmul_backward(const std::string& name, int in_channels, int out_channels, int seq);
// §5.3 sdpaFwd: input [1, D, 1, S + Dq + 2Dkv], row c = xnorm | Wqᵀ | Wkᵀ | Wvᵀ; output
// [1, 2Dq + 2Dkv + D, 1, S] = attention | rotated Q | rotated K | V | xnorm.
Kernel sdpa_forward(const AttentionGeometry& g);
// §5.3 ffnFused: input [1, D, 1, 2S + 3H], row c = x2norm | x2 | W1ᵀ | W3ᵀ | W2[c,:]; output
// [1, D + 3H, 1, S] = x2 + α W2 g | h1 | h3 | g.
Kernel ffn_fused(int dim, int hidden, int seq, float alpha);
// §5.4 sdpaBwd1: input [1, 4Dq, 1, S] = Q_rot | K_tiled | V_tiled | dO; output
// [1, Dq + 2·nh·S, 1, S] = dV_tiled | P | dP.
Kernel sdpa_backward1(const AttentionGeometry& g);
// §5.4 sdpaBwd2: input [1, 2·nh·S + 2Dq, 1, S] = P | dP | Q_rot | K_tiled; output [1, 2Dq, 1, S]
// = dQ | dK_tiled.
Kernel sdpa_backward2(const AttentionGeometry& g);
// §5.5, weights baked: W [OC, IC] row-major (the model's own orientation).
Kernel conv1x1(const std::string& name, int in_channels, int out_channels, int seq, const float* w);
// Q, K, V stacked on channels from xnorm [1, D, 1, S].
Kernel qkv_conv(int dim, int q_dim, int kv_dim, int seq, const float* wq, const float* wk, const float* wv);
// Input [1, D, 1, 2S], row c = xnorm | x; output x + α W2 (SiLU(W1 xn) ⊙ W3 xn).
Kernel ffn_conv(int dim, int hidden, int seq, float alpha, const float* w1, const float* w3, const float* w2);

// The constant tables the attention kernels bake (fp16 blobs, spec §2).
std::vector<float> causal_mask(int seq);                                 // [S, S]: 0 or -65504
void rope_table_rows(int seq, int head_dim, double theta, std::vector<float>& cos, std::vector<float>& sin,
                     const std::vector<double>& divisors = {});  // [S, hd]

}  // namespace ane::mil
