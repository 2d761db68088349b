#include "ane/mil/generators.hpp"

#include <cmath>
#include <stdexcept>

#include "ane/model/kernels.hpp"
#include "mil_writer.hpp"

namespace ane::mil {

namespace {

using V = std::string;

Kernel finish(MilWriter& w, const std::string& name, const V& out, int ic, int isp, int oc, int osp,
              std::vector<Region> row, std::vector<Region> outputs) {
    Kernel k;
    k.name = name;
    k.text = w.finish(out);
    k.blobs = w.take_blobs();
    k.in_channels = ic;
    k.in_spatial = isp;
    k.out_channels = oc;
    k.out_spatial = osp;
    k.row = std::move(row);
    k.outputs = std::move(outputs);
    return k;
}

// §5.1's dataflow: activations act [1, IC, 1, S] and weights wts [1, IC, 1, OC] -> [1, OC, 1, S].
V project(MilWriter& w, const V& act, const V& wts, int IC, int OC, int S, const std::string& p) {
    const V a4 = w.reshape(act, {1, 1, IC, S}, p + "_a");
    const V at = w.swap_last(a4, {1, 1, IC, S}, p + "_at");
    const V w4 = w.reshape(wts, {1, 1, IC, OC}, p + "_w");
    const V y = w.matmul(at, w4, false, false, {1, 1, S, OC}, p + "_y");
    const V yt = w.swap_last(y, {1, 1, S, OC}, p + "_yt");
    return w.reshape(yt, {1, OC, 1, S}, p);
}

// [1, C, 1, S] channels -> heads [1, h, S, hd].
V to_heads(MilWriter& w, const V& x, int heads, int hd, int S, const std::string& p) {
    const V r = w.reshape(x, {1, heads, hd, S}, p + "_h");
    return w.swap_last(r, {1, heads, hd, S}, p + "_ht");
}
// heads [1, h, S, hd] -> channels [1, h·hd, 1, S].
V to_channels(MilWriter& w, const V& x, int heads, int hd, int S, const std::string& p) {
    const V t = w.swap_last(x, {1, heads, S, hd}, p + "_t");
    return w.reshape(t, {1, heads * hd, 1, S}, p);
}

// Interleaved-pair rotation: x·cos + (−odd, even)·sin with [1, 1, S, hd] tables.
V rope(MilWriter& w, const V& x, int heads, int hd, int S, const V& cos, const V& sin, const std::string& p) {
    const int half = S * hd / 2;
    const V pairs = w.reshape(x, {1, heads, half, 2}, p + "_pairs");
    const V even = w.slice(pairs, {0, 0, 0, 0}, {1, heads, half, 1}, p + "_even");
    const V odd = w.slice(pairs, {0, 0, 0, 1}, {1, heads, half, 1}, p + "_odd");
    const V neg = w.op(p + "_neg", {1, heads, half, 1}, "mul", "x=" + odd + ",y=" + w.fp16(-1.0f, "%g"));
    const V rot = w.concat({neg, even}, 3, {1, heads, half, 2}, p + "_rotp");
    const V rot4 = w.reshape(rot, {1, heads, S, hd}, p + "_rot");
    const V xc = w.op(p + "_cos", {1, heads, S, hd}, "mul", "x=" + x + ",y=" + cos);
    const V rs = w.op(p + "_sin", {1, heads, S, hd}, "mul", "x=" + rot4 + ",y=" + sin);
    return w.op(p + "_r", {1, heads, S, hd}, "add", "x=" + xc + ",y=" + rs);
}

// KV heads [1, nkv, S, hd] -> [1, nh, S, hd], query head h reading KV head h / r.
V tile_heads(MilWriter& w, const V& x, int nkv, int r, int hd, int S, const std::string& p) {
    if (r == 1) return x;
    const V flat = w.reshape(x, {1, nkv, 1, S * hd}, p + "_flat");
    const V copies = w.concat(std::vector<V>(std::size_t(r), flat), 2, {1, nkv, r, S * hd}, p + "_rep");
    return w.reshape(copies, {1, nkv * r, S, hd}, p + "_tiled");
}

V scaled_masked_softmax(MilWriter& w, const V& scores, int nh, int S, float scale, const V& mask) {
    const V sc = w.op("scaled", {1, nh, S, S}, "mul", "x=" + scores + ",y=" + w.fp16(scale, "%f"));
    const V ms = w.op("masked", {1, nh, S, S}, "add", "x=" + sc + ",y=" + mask);
    return w.op("probs", {1, nh, S, S}, "softmax", "axis=" + w.int32(-1) + ",x=" + ms);
}

void check_geometry(const AttentionGeometry& g) {
    if (g.dim < 1 || g.heads < 1 || g.kv_heads < 1 || g.head_dim < 2 || g.head_dim % 2 || g.seq < 1 ||
        g.heads % g.kv_heads)
        throw std::invalid_argument("attention kernel: inconsistent geometry");
}

float attention_scale(const AttentionGeometry& g) { return 1.0f / std::sqrt(float(g.head_dim)); }

V conv(MilWriter& w, const V& x, const V& weight, int OC, int S, const std::string& p) {
    return w.op(p, {1, OC, 1, S}, "conv",
                "dilations=" + w.ints({1, 1}) + ",groups=" + w.int32(1) + ",pad=" + w.ints({0, 0, 0, 0}) +
                    ",pad_type=" + w.text("valid") + ",strides=" + w.ints({1, 1}) + ",weight=" + weight + ",x=" + x);
}

std::vector<float> copy_of(const float* p, std::size_t n) { return std::vector<float>(p, p + n); }

}  // namespace

std::vector<float> causal_mask(int S) {
    std::vector<float> m(std::size_t(S) * std::size_t(S));
    for (int t = 0; t < S; ++t)
        for (int j = 0; j < S; ++j) m[std::size_t(t) * std::size_t(S) + std::size_t(j)] = j <= t ? 0.0f : -65504.0f;
    return m;
}

void rope_table_rows(int S, int hd, double theta, std::vector<float>& cos, std::vector<float>& sin,
                     const std::vector<double>& divisors) {
    std::vector<float> c(std::size_t(S) * std::size_t(hd / 2)), s(c.size());
    kernels::rope_tables(S, hd, theta, c.data(), s.data(), divisors);  // the same angles as the cpu path
    cos.resize(std::size_t(S) * std::size_t(hd));
    sin.resize(cos.size());
    for (std::size_t k = 0; k < c.size(); ++k) {
        cos[2 * k] = cos[2 * k + 1] = c[k];
        sin[2 * k] = sin[2 * k + 1] = s[k];
    }
}

Kernel dynamic_matmul(const std::string& name, int IC, int OC, int S) {
    MilWriter w(IC, S + OC);
    const V act = w.slice("x", {0, 0, 0, 0}, {1, IC, 1, S}, "act");
    const V wts = w.slice("x", {0, 0, 0, S}, {1, IC, 1, OC}, "wts");
    const V y = project(w, act, wts, IC, OC, S, "y");
    return finish(w, name, y, IC, S + OC, OC, S, {{0, S, "X[c, 0..S)", false}, {S, OC, "M[c, 0..OC)", true}},
                  {{0, OC, "Y = Mᵀ X", false}});
}

Kernel two_matmul_backward(const std::string& name, int IC, int OC, int S) {
    MilWriter w(IC, 2 * S + 2 * OC);
    const V da = w.slice("x", {0, 0, 0, 0}, {1, IC, 1, S}, "da");
    const V db = w.slice("x", {0, 0, 0, S}, {1, IC, 1, S}, "db");
    const V wa = w.slice("x", {0, 0, 0, 2 * S}, {1, IC, 1, OC}, "wa");
    const V wb = w.slice("x", {0, 0, 0, 2 * S + OC}, {1, IC, 1, OC}, "wb");
    const V ya = project(w, da, wa, IC, OC, S, "ya");
    const V yb = project(w, db, wb, IC, OC, S, "yb");
    const V out = w.op("dx", {1, OC, 1, S}, "add", "x=" + ya + ",y=" + yb);
    return finish(w, name, out, IC, 2 * S + 2 * OC, OC, S,
                  {{0, S, "dA[c, 0..S)", false}, {S, S, "dB[c, 0..S)", false}, {2 * S, OC, "A[c, :]", true},
                   {2 * S + OC, OC, "B[c, :]", true}},
                  {{0, OC, "Aᵀ dA + Bᵀ dB", false}});
}

Kernel sdpa_forward(const AttentionGeometry& g) {
    check_geometry(g);
    const int D = g.dim, S = g.seq, nh = g.heads, nkv = g.kv_heads, hd = g.head_dim, Q = g.q_dim(), KV = g.kv_dim();
    MilWriter w(D, S + Q + 2 * KV);
    std::vector<float> cos, sin;
    rope_table_rows(S, hd, g.rope_theta, cos, sin, g.rope_divisors);
    const V mask = w.blob({1, 1, S, S}, "mask.bin", causal_mask(S));
    const V tc = w.blob({1, 1, S, hd}, "rope_cos.bin", cos);
    const V ts = w.blob({1, 1, S, hd}, "rope_sin.bin", sin);
    const V xn = w.slice("x", {0, 0, 0, 0}, {1, D, 1, S}, "xn");
    const V wq = w.slice("x", {0, 0, 0, S}, {1, D, 1, Q}, "wq");
    const V wk = w.slice("x", {0, 0, 0, S + Q}, {1, D, 1, KV}, "wk");
    const V wv = w.slice("x", {0, 0, 0, S + Q + KV}, {1, D, 1, KV}, "wv");
    const V q = project(w, xn, wq, D, Q, S, "q");
    const V k = project(w, xn, wk, D, KV, S, "k");
    const V v = project(w, xn, wv, D, KV, S, "v");
    const V qr = rope(w, to_heads(w, q, nh, hd, S, "q"), nh, hd, S, tc, ts, "q");
    const V kr = rope(w, to_heads(w, k, nkv, hd, S, "k"), nkv, hd, S, tc, ts, "k");
    const int r = nh / nkv;
    const V kt = tile_heads(w, kr, nkv, r, hd, S, "k");
    const V vt = tile_heads(w, to_heads(w, v, nkv, hd, S, "v"), nkv, r, hd, S, "v");
    const V scores = w.matmul(qr, kt, false, true, {1, nh, S, S}, "scores");
    const V p = scaled_masked_softmax(w, scores, nh, S, attention_scale(g), mask);
    const V att = w.matmul(p, vt, false, false, {1, nh, S, hd}, "att");
    const V outs = w.concat({to_channels(w, att, nh, hd, S, "att_c"), to_channels(w, qr, nh, hd, S, "q_c"),
                             to_channels(w, kr, nkv, hd, S, "k_c"), v, xn},
                            1, {1, 2 * Q + 2 * KV + D, 1, S}, "out");
    return finish(w, "sdpaFwd", outs, D, S + Q + 2 * KV, 2 * Q + 2 * KV + D, S,
                  {{0, S, "xnorm[c, 0..S)", false}, {S, Q, "Wq[:, c]", true}, {S + Q, KV, "Wk[:, c]", true},
                   {S + Q + KV, KV, "Wv[:, c]", true}},
                  {{0, Q, "attention output", false}, {Q, Q, "Q (rotated)", false}, {2 * Q, KV, "K (rotated)", false},
                   {2 * Q + KV, KV, "V", false}, {2 * Q + 2 * KV, D, "xnorm", false}});
}

Kernel ffn_fused(int D, int H, int S, float alpha) {
    MilWriter w(D, 2 * S + 3 * H);
    const V xn = w.slice("x", {0, 0, 0, 0}, {1, D, 1, S}, "xn");
    const V xr = w.slice("x", {0, 0, 0, S}, {1, D, 1, S}, "xr");
    const V w1 = w.slice("x", {0, 0, 0, 2 * S}, {1, D, 1, H}, "w1");
    const V w3 = w.slice("x", {0, 0, 0, 2 * S + H}, {1, D, 1, H}, "w3");
    const V w2 = w.slice("x", {0, 0, 0, 2 * S + 2 * H}, {1, D, 1, H}, "w2");
    const V h1 = project(w, xn, w1, D, H, S, "h1");
    const V h3 = project(w, xn, w3, D, H, S, "h3");
    const V sg = w.op("sg", {1, H, 1, S}, "sigmoid", "x=" + h1);
    const V si = w.op("silu", {1, H, 1, S}, "mul", "x=" + h1 + ",y=" + sg);
    const V g = w.op("g", {1, H, 1, S}, "mul", "x=" + si + ",y=" + h3);
    const V w2m = w.reshape(w2, {1, 1, D, H}, "w2m");
    const V g4 = w.reshape(g, {1, 1, H, S}, "g4");
    const V f4 = w.matmul(w2m, g4, false, false, {1, 1, D, S}, "ffn4");
    const V f = w.reshape(f4, {1, D, 1, S}, "ffn");
    const V fs = w.op("ffn_scaled", {1, D, 1, S}, "mul", "x=" + f + ",y=" + w.fp16(alpha, "%g"));
    const V nx = w.op("x_next", {1, D, 1, S}, "add", "x=" + xr + ",y=" + fs);
    const V out = w.concat({nx, h1, h3, g}, 1, {1, D + 3 * H, 1, S}, "out");
    return finish(w, "ffnFused", out, D, 2 * S + 3 * H, D + 3 * H, S,
                  {{0, S, "x2norm[c, 0..S)", false}, {S, S, "x2[c, 0..S)", false}, {2 * S, H, "W1[:, c]", true},
                   {2 * S + H, H, "W3[:, c]", true}, {2 * S + 2 * H, H, "W2[c, :]", true}},
                  {{0, D, "x2 + alpha W2 g", false}, {D, H, "h1", false}, {D + H, H, "h3", false},
                   {D + 2 * H, H, "g = SiLU(h1) h3", false}});
}

Kernel sdpa_backward1(const AttentionGeometry& g) {
    check_geometry(g);
    const int S = g.seq, nh = g.heads, hd = g.head_dim, Q = g.q_dim();
    MilWriter w(4 * Q, S);
    const V mask = w.blob({1, 1, S, S}, "mask.bin", causal_mask(S));
    const V q = to_heads(w, w.slice("x", {0, 0, 0, 0}, {1, Q, 1, S}, "q"), nh, hd, S, "q");
    const V k = to_heads(w, w.slice("x", {0, Q, 0, 0}, {1, Q, 1, S}, "k"), nh, hd, S, "k");
    const V v = to_heads(w, w.slice("x", {0, 2 * Q, 0, 0}, {1, Q, 1, S}, "v"), nh, hd, S, "v");
    const V dout = to_heads(w, w.slice("x", {0, 3 * Q, 0, 0}, {1, Q, 1, S}, "dout"), nh, hd, S, "dout");
    const V scores = w.matmul(q, k, false, true, {1, nh, S, S}, "scores");
    const V p = scaled_masked_softmax(w, scores, nh, S, attention_scale(g), mask);
    const V dv = w.matmul(p, dout, true, false, {1, nh, S, hd}, "dv");
    const V dp = w.matmul(dout, v, false, true, {1, nh, S, S}, "dp");
    const V out = w.concat({to_channels(w, dv, nh, hd, S, "dv_c"), w.reshape(p, {1, nh * S, 1, S}, "p_c"),
                            w.reshape(dp, {1, nh * S, 1, S}, "dp_c")},
                           1, {1, Q + 2 * nh * S, 1, S}, "out");
    return finish(w, "sdpaBwd1", out, 4 * Q, S, Q + 2 * nh * S, S,
                  {{0, S, "channels [0, Dq) Q_rot, [Dq, 2Dq) K tiled to the query heads, [2Dq, 3Dq) V tiled, "
                          "[3Dq, 4Dq) dO", false}},
                  {{0, Q, "dV (tiled)", false}, {Q, nh * S, "P, channel h*S + t (head h, query t)", false},
                   {Q + nh * S, nh * S, "dP", false}});
}

Kernel sdpa_backward2(const AttentionGeometry& g) {
    check_geometry(g);
    const int S = g.seq, nh = g.heads, hd = g.head_dim, Q = g.q_dim(), SC = nh * S;
    MilWriter w(2 * SC + 2 * Q, S);
    const V p = w.reshape(w.slice("x", {0, 0, 0, 0}, {1, SC, 1, S}, "p_c"), {1, nh, S, S}, "p");
    const V dp = w.reshape(w.slice("x", {0, SC, 0, 0}, {1, SC, 1, S}, "dp_c"), {1, nh, S, S}, "dp");
    const V q = to_heads(w, w.slice("x", {0, 2 * SC, 0, 0}, {1, Q, 1, S}, "q"), nh, hd, S, "q");
    const V k = to_heads(w, w.slice("x", {0, 2 * SC + Q, 0, 0}, {1, Q, 1, S}, "k"), nh, hd, S, "k");
    const V pdp = w.op("pdp", {1, nh, S, S}, "mul", "x=" + p + ",y=" + dp);
    const V rs = w.op("rowsum", {1, nh, S, 1}, "reduce_sum",
                      "x=" + pdp + ",axes=" + w.ints({-1}) + ",keep_dims=" + w.boolean(true));
    const V diff = w.op("centered", {1, nh, S, S}, "sub", "x=" + dp + ",y=" + rs);
    const V ds0 = w.op("ds0", {1, nh, S, S}, "mul", "x=" + p + ",y=" + diff);
    const V ds = w.op("ds", {1, nh, S, S}, "mul", "x=" + ds0 + ",y=" + w.fp16(attention_scale(g), "%f"));
    const V dq = w.matmul(ds, k, false, false, {1, nh, S, hd}, "dq");
    const V dk = w.matmul(ds, q, true, false, {1, nh, S, hd}, "dk");
    const V out = w.concat({to_channels(w, dq, nh, hd, S, "dq_c"), to_channels(w, dk, nh, hd, S, "dk_c")}, 1,
                           {1, 2 * Q, 1, S}, "out");
    return finish(w, "sdpaBwd2", out, 2 * SC + 2 * Q, S, 2 * Q, S,
                  {{0, S, "channels [0, nh*S) P, [nh*S, 2nh*S) dP (copied from sdpaBwd1's output), then Q_rot, "
                          "K tiled", false}},
                  {{0, Q, "dQ", false}, {Q, Q, "dK (tiled)", false}});
}

Kernel conv1x1(const std::string& name, int IC, int OC, int S, const float* weight) {
    MilWriter w(IC, S);
    const V wt = w.blob({OC, IC, 1, 1}, "w.bin", copy_of(weight, std::size_t(OC) * std::size_t(IC)));
    const V y = conv(w, "x", wt, OC, S, "y");
    return finish(w, name, y, IC, S, OC, S, {{0, S, "x[c, 0..S)", false}}, {{0, OC, "W x (W baked in w.bin)", false}});
}

Kernel qkv_conv(int D, int Q, int KV, int S, const float* wq, const float* wk, const float* wv) {
    MilWriter w(D, S);
    const V bq = w.blob({Q, D, 1, 1}, "wq.bin", copy_of(wq, std::size_t(Q) * std::size_t(D)));
    const V bk = w.blob({KV, D, 1, 1}, "wk.bin", copy_of(wk, std::size_t(KV) * std::size_t(D)));
    const V bv = w.blob({KV, D, 1, 1}, "wv.bin", copy_of(wv, std::size_t(KV) * std::size_t(D)));
    const V out = w.concat({conv(w, "x", bq, Q, S, "q"), conv(w, "x", bk, KV, S, "k"), conv(w, "x", bv, KV, S, "v")},
                           1, {1, Q + 2 * KV, 1, S}, "qkv");
    return finish(w, "qkvConv", out, D, S, Q + 2 * KV, S, {{0, S, "xnorm[c, 0..S)", false}},
                  {{0, Q, "Q", false}, {Q, KV, "K", false}, {Q + KV, KV, "V", false}});
}

Kernel ffn_conv(int D, int H, int S, float alpha, const float* w1, const float* w3, const float* w2) {
    MilWriter w(D, 2 * S);
    const V b1 = w.blob({H, D, 1, 1}, "w1.bin", copy_of(w1, std::size_t(H) * std::size_t(D)));
    const V b3 = w.blob({H, D, 1, 1}, "w3.bin", copy_of(w3, std::size_t(H) * std::size_t(D)));
    const V b2 = w.blob({D, H, 1, 1}, "w2.bin", copy_of(w2, std::size_t(D) * std::size_t(H)));
    const V xn = w.slice("x", {0, 0, 0, 0}, {1, D, 1, S}, "xn");
    const V xr = w.slice("x", {0, 0, 0, S}, {1, D, 1, S}, "xr");
    const V h1 = conv(w, xn, b1, H, S, "h1");
    const V h3 = conv(w, xn, b3, H, S, "h3");
    const V sg = w.op("sg", {1, H, 1, S}, "sigmoid", "x=" + h1);
    const V si = w.op("silu", {1, H, 1, S}, "mul", "x=" + h1 + ",y=" + sg);
    const V g = w.op("g", {1, H, 1, S}, "mul", "x=" + si + ",y=" + h3);
    const V f = conv(w, g, b2, D, S, "ffn");
    const V fs = w.op("ffn_scaled", {1, D, 1, S}, "mul", "x=" + f + ",y=" + w.fp16(alpha, "%g"));
    const V out = w.op("x_next", {1, D, 1, S}, "add", "x=" + xr + ",y=" + fs);
    return finish(w, "ffnConv", out, D, 2 * S, D, S, {{0, S, "xnorm[c, 0..S)", false}, {S, S, "x[c, 0..S)", false}},
                  {{0, D, "x + alpha W2 (SiLU(W1 xn) W3 xn)", false}});
}

}  // namespace ane::mil
