#pragma once
// A deliberately plain double-precision transformer, written from spec/model.md with naive
// loops, used as the reference for the fast float model and for finite differences.
#include <cmath>
#include <cstdint>
#include <vector>

#include "ane/weights.hpp"

namespace ane::test {

struct RefLayer {
    std::vector<double> wq, wk, wv, wo, w1, w2, w3, rms_att, rms_ffn;
    std::vector<double> bq, bk, bv, q_norm, k_norm;  // empty unless the family has them
};
struct RefModel {
    ModelConfig c;
    bool rope_halves = false;  // Hugging Face's rotate_half pairing (i, i + hd/2)
    std::vector<RefLayer> layers;
    std::vector<double> embed, rms_final, classifier;
};

inline std::vector<double> to_double(const Tensor& t) { return {t.data(), t.data() + t.numel()}; }

inline RefModel to_ref(const Weights& w) {
    RefModel r;
    r.c = w.config;
    for (const auto& l : w.layers)
        r.layers.push_back({to_double(l.wq), to_double(l.wk), to_double(l.wv), to_double(l.wo), to_double(l.w1),
                            to_double(l.w2), to_double(l.w3), to_double(l.rms_att), to_double(l.rms_ffn),
                            to_double(l.bq), to_double(l.bk), to_double(l.bv), to_double(l.q_norm),
                            to_double(l.k_norm)});
    r.embed = to_double(w.embed);
    r.rms_final = to_double(w.rms_final);
    if (!w.config.tied) r.classifier = to_double(w.classifier);
    return r;
}

// Every parameter of the reference, in Weights::for_each order, for finite differences.
inline std::vector<std::vector<double>*> ref_params(RefModel& r) {
    std::vector<std::vector<double>*> p;
    for (auto& l : r.layers)
        for (auto* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3, &l.rms_att, &l.rms_ffn}) p.push_back(t);
    p.push_back(&r.rms_final);
    p.push_back(&r.embed);
    if (!r.c.tied) p.push_back(&r.classifier);
    for (auto& l : r.layers)
        for (auto* t : {&l.bq, &l.bk, &l.bv, &l.q_norm, &l.k_norm})
            if (!t->empty()) p.push_back(t);
    return p;
}

using Mat = std::vector<std::vector<double>>;  // [S][C]

inline Mat ref_rmsnorm(const Mat& x, const std::vector<double>& w, double eps) {
    Mat y = x;
    for (std::size_t t = 0; t < x.size(); ++t) {
        double ss = 0;
        for (double v : x[t]) ss += v * v;
        const double r = 1.0 / std::sqrt(ss / double(x[t].size()) + eps);
        for (std::size_t i = 0; i < x[t].size(); ++i) y[t][i] = x[t][i] * r * w[i];
    }
    return y;
}

inline Mat ref_linear(const Mat& x, const std::vector<double>& w, int out) {
    const std::size_t in = x[0].size();
    Mat y(x.size(), std::vector<double>(out, 0.0));
    for (std::size_t t = 0; t < x.size(); ++t)
        for (int o = 0; o < out; ++o) {
            double s = 0;
            for (std::size_t i = 0; i < in; ++i) s += w[o * in + i] * x[t][i];
            y[t][o] = s;
        }
    return y;
}

// Rotary frequency i, with Llama 3's scaling written as transformers' _compute_llama3_parameters
// does it (masks over the wavelengths), not as the suite's rope_divisors().
inline double ref_inv_freq(int i, int hd, double theta, const ModelConfig::Llama3Rope& r = {}) {
    const double inv_freq = 1.0 / std::pow(theta, 2.0 * i / hd);
    if (r.factor == 0) return inv_freq;
    const double pi = 3.14159265358979323846;
    const double low_freq_wavelen = r.original_context / r.low_freq_factor;
    const double high_freq_wavelen = r.original_context / r.high_freq_factor;
    const double wavelen = 2 * pi / inv_freq;
    double llama = wavelen > low_freq_wavelen ? inv_freq / r.factor : inv_freq;
    const double smooth = (r.original_context / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    const double smoothed = (1 - smooth) * llama / r.factor + smooth * llama;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    return medium ? smoothed : llama;
}

inline void ref_rope(Mat& x, int heads, int hd, double theta, const ModelConfig::Llama3Rope& scaling = {}) {
    for (std::size_t p = 0; p < x.size(); ++p)
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < hd / 2; ++i) {
                const double freq = ref_inv_freq(i, hd, theta, scaling);
                const double a = double(p) * freq;
                double& x0 = x[p][h * hd + 2 * i];
                double& x1 = x[p][h * hd + 2 * i + 1];
                const double y0 = x0 * std::cos(a) - x1 * std::sin(a), y1 = x0 * std::sin(a) + x1 * std::cos(a);
                x0 = y0;
                x1 = y1;
            }
}

inline void ref_rope_halves(Mat& x, int heads, int hd, double theta, const ModelConfig::Llama3Rope& scaling = {}) {
    for (std::size_t p = 0; p < x.size(); ++p)
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < hd / 2; ++i) {
                const double a = double(p) * ref_inv_freq(i, hd, theta, scaling);
                double& x0 = x[p][h * hd + i];
                double& x1 = x[p][h * hd + hd / 2 + i];
                const double y0 = x0 * std::cos(a) - x1 * std::sin(a), y1 = x0 * std::sin(a) + x1 * std::cos(a);
                x0 = y0;
                x1 = y1;
            }
}

inline Mat ref_attention(const Mat& q, const Mat& k, const Mat& v, int nh, int nkv, int hd) {
    const int S = int(q.size()), r = nh / nkv;
    Mat o(S, std::vector<double>(nh * hd, 0.0));
    for (int h = 0; h < nh; ++h) {
        const int g = h / r;
        for (int t = 0; t < S; ++t) {
            std::vector<double> s(t + 1);
            double mx = -1e300;
            for (int j = 0; j <= t; ++j) {
                double d = 0;
                for (int e = 0; e < hd; ++e) d += q[t][h * hd + e] * k[j][g * hd + e];
                s[j] = d / std::sqrt(double(hd));
                mx = std::max(mx, s[j]);
            }
            double sum = 0;
            for (auto& x : s) sum += (x = std::exp(x - mx));
            for (int j = 0; j <= t; ++j)
                for (int e = 0; e < hd; ++e) o[t][h * hd + e] += s[j] / sum * v[j][g * hd + e];
        }
    }
    return o;
}

inline void ref_add_bias(Mat& x, const std::vector<double>& b) {
    for (auto& row : x)
        for (std::size_t i = 0; i < row.size(); ++i) row[i] += b[i];
}

// Qwen3's QK-norm: each head's vector through RMSNorm with the one gain [hd] all heads share.
inline void ref_head_norm(Mat& x, int heads, int hd, const std::vector<double>& w, double eps) {
    for (auto& row : x)
        for (int h = 0; h < heads; ++h) {
            double ss = 0;
            for (int e = 0; e < hd; ++e) ss += row[h * hd + e] * row[h * hd + e];
            const double r = 1.0 / std::sqrt(ss / hd + eps);
            for (int e = 0; e < hd; ++e) row[h * hd + e] *= r * w[std::size_t(e)];
        }
}

// Logits [S][V] over the full vocabulary for one sequence.
inline Mat ref_logits(const RefModel& m, const std::vector<int>& tokens) {
    const ModelConfig& c = m.c;
    const int S = int(tokens.size()), D = c.dim;
    Mat x(S, std::vector<double>(D));
    for (int t = 0; t < S; ++t)
        for (int i = 0; i < D; ++i) x[t][i] = m.embed[std::size_t(tokens[t]) * D + i];
    const double alpha = c.residual_scale;
    for (const auto& L : m.layers) {
        const Mat a = ref_rmsnorm(x, L.rms_att, c.norm_eps);
        Mat q = ref_linear(a, L.wq, c.q_dim()), k = ref_linear(a, L.wk, c.kv_dim());
        Mat v = ref_linear(a, L.wv, c.kv_dim());
        if (!L.bq.empty()) {
            ref_add_bias(q, L.bq);
            ref_add_bias(k, L.bk);
            ref_add_bias(v, L.bv);
        }
        if (!L.q_norm.empty()) {
            ref_head_norm(q, c.heads, c.head_dim, L.q_norm, c.norm_eps);
            ref_head_norm(k, c.kv_heads, c.head_dim, L.k_norm, c.norm_eps);
        }
        if (m.rope_halves) {
            ref_rope_halves(q, c.heads, c.head_dim, c.rope_theta, c.rope_llama3);
            ref_rope_halves(k, c.kv_heads, c.head_dim, c.rope_theta, c.rope_llama3);
        } else {
            ref_rope(q, c.heads, c.head_dim, c.rope_theta, c.rope_llama3);
            ref_rope(k, c.kv_heads, c.head_dim, c.rope_theta, c.rope_llama3);
        }
        const Mat o = ref_linear(ref_attention(q, k, v, c.heads, c.kv_heads, c.head_dim), L.wo, D);
        for (int t = 0; t < S; ++t)
            for (int i = 0; i < D; ++i) x[t][i] += alpha * o[t][i];
        const Mat f = ref_rmsnorm(x, L.rms_ffn, c.norm_eps);
        const Mat h1 = ref_linear(f, L.w1, c.hidden), h3 = ref_linear(f, L.w3, c.hidden);
        Mat g = h1;
        for (int t = 0; t < S; ++t)
            for (int i = 0; i < c.hidden; ++i) g[t][i] = h1[t][i] / (1.0 + std::exp(-h1[t][i])) * h3[t][i];
        const Mat y = ref_linear(g, L.w2, D);
        for (int t = 0; t < S; ++t)
            for (int i = 0; i < D; ++i) x[t][i] += alpha * y[t][i];
    }
    const Mat xf = ref_rmsnorm(x, m.rms_final, c.norm_eps);
    return ref_linear(xf, c.tied ? m.embed : m.classifier, c.vocab);
}

// Mean cross-entropy over several sequences, the classifier restricted to `classes`
// (ascending full ids), targets given as full ids.
inline double ref_loss(const RefModel& m, const std::vector<std::vector<int>>& inputs,
                       const std::vector<std::vector<int>>& targets, const std::vector<int>& classes) {
    double total = 0;
    int count = 0;
    for (std::size_t b = 0; b < inputs.size(); ++b) {
        const Mat z = ref_logits(m, inputs[b]);
        for (std::size_t t = 0; t < z.size(); ++t) {
            double mx = -1e300, sum = 0, zt = 0;
            for (int c : classes) mx = std::max(mx, z[t][c]);
            for (int c : classes) sum += std::exp(z[t][c] - mx);
            zt = z[t][targets[b][t]];
            total += std::log(sum) - (zt - mx);
            ++count;
        }
    }
    return total / count;
}

}  // namespace ane::test
