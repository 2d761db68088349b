#include "ane/model/decoder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ane/error.hpp"
#include "ane/memory_limit.hpp"
#include "ane/model/kernels.hpp"
#include "ane/model/transformer.hpp"

namespace ane {

Decoder::Decoder(const Weights& weights, Device& device, int context, int max_chunk)
    : Decoder(InferenceWeights::view(weights), device, context, max_chunk, /*keep_copy=*/true) {}

Decoder::Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk)
    : Decoder(weights, device, context, max_chunk, /*keep_copy=*/false) {}

// keep_copy: `weights` is a temporary set of views, kept here.
Decoder::Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk, bool keep_copy)
    : view_(keep_copy ? weights : InferenceWeights{}),
      w_(keep_copy ? view_ : weights),
      base_(*weights.base),
      all_f32_(weights.all_f32()),
      dev_(device),
      context_(context),
      max_chunk_(std::max(1, std::min(max_chunk, context))) {
    const ModelConfig& c = base_.config;
    require(context >= 1, "context must be at least 1");
    require_memory(4.0 * (2.0 * c.layers * context * c.kv_dim() + double(context) * c.head_dim),
                   "a context of " + std::to_string(context) + " tokens");
    const std::int64_t T = max_chunk_, D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden;
    for (int l = 0; l < c.layers; ++l) {
        k_cache_.emplace_back(Shape{context, KV});
        v_cache_.emplace_back(Shape{context, KV});
    }
    rope_cos_ = Tensor({context, c.head_dim / 2});
    rope_sin_ = Tensor({context, c.head_dim / 2});
    kernels::rope_tables(context, c.head_dim, c.rope_theta, rope_cos_.data(), rope_sin_.data(), c.rope_divisors());
    x_ = Tensor({T, D});
    a_ = Tensor({T, D});
    q_ = Tensor({T, Q});
    k_ = Tensor({T, KV});
    v_ = Tensor({T, KV});
    o_ = Tensor({T, Q});
    f_ = Tensor({T, D});
    h1_ = Tensor({T, H});
    h3_ = Tensor({T, H});
    g_ = Tensor({T, H});
    rstd_ = Tensor({T, 1});
    if (c.qk_norm) rstd_heads_ = Tensor({T * std::max(c.heads, c.kv_heads), 1});
    logits_ = Tensor({T, c.vocab});
}

const float* Decoder::feed(const std::int32_t* tokens, int n, std::vector<float>* all_logits) {
    require(n >= 1, "nothing to decode");
    require(pos_ + n <= context_, "the context of ", context_, " tokens is full (", pos_, " used, ", n, " more asked)");
    if (all_logits) all_logits->clear();
    int last = 0;
    for (int i = 0; i < n; i += max_chunk_) {
        last = std::min(max_chunk_, n - i);
        feed_chunk(tokens + i, last, all_logits);
    }
    return logits_.row(all_logits ? last - 1 : 0);
}

void Decoder::product(Projection p, const float* X, const QuantMatrix& W, int n, float* Y, float alpha, float beta) {
    if (const float* w = W.f32()) return dev_.projection_forward(p, X, w, n, W.rows(), W.cols(), Y, alpha, beta);
    dev_.quant_matmul_forward(X, W, n, Y, alpha, beta);
}

void Decoder::feed_chunk(const std::int32_t* tokens, int n, std::vector<float>* all_logits) {
    const ModelConfig& c = base_.config;
    const int D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden, hd = c.head_dim;
    const int nh = c.heads, nkv = c.kv_heads, r = nh / nkv;
    const float eps = float(c.norm_eps), alpha = float(c.residual_scale), scale = 1.0f / std::sqrt(float(hd));
    for (int t = 0; t < n; ++t) {
        require(tokens[t] >= 0 && tokens[t] < c.vocab, "token id ", tokens[t], " is outside the vocabulary of ", c.vocab);
        w_.embed.decode_rows(tokens[t], tokens[t] + 1, x_.row(t));
    }
    dev_.begin_pass(1, n);
    const float* cos_at = rope_cos_.row(pos_);
    const float* sin_at = rope_sin_.row(pos_);
    for (int l = 0; l < c.layers; ++l) {
        const LayerWeights& W = base_.layers[l];
        const InferenceLayer& M = w_.layers[l];
        kernels::rmsnorm_forward(x_.data(), W.rms_att.data(), n, D, eps, a_.data(), rstd_.data());
        if (all_f32_) {
            dev_.qkv_forward(a_.data(), M.wq.f32(), M.wk.f32(), M.wv.f32(), n, D, Q, KV, q_.data(), k_.data(), v_.data());
        } else {
            product(Projection::wq, a_.data(), M.wq, n, q_.data());
            product(Projection::wk, a_.data(), M.wk, n, k_.data());
            product(Projection::wv, a_.data(), M.wv, n, v_.data());
        }
        qkv_extras_forward(c, W, n, q_.data(), k_.data(), v_.data(), q_.data(), k_.data(), rstd_heads_.data(),
                           rstd_heads_.data());  // in place; the norms are not kept
        // Positions pos_ .. pos_ + n - 1: the tables from row pos_ on, never wrapping.
        kernels::rope_apply(q_.data(), n, context_, nh, hd, cos_at, sin_at, false);
        kernels::rope_apply(k_.data(), n, context_, nkv, hd, cos_at, sin_at, false);
        std::memcpy(k_cache_[l].row(pos_), k_.data(), sizeof(float) * std::size_t(n) * KV);
        std::memcpy(v_cache_[l].row(pos_), v_.data(), sizeof(float) * std::size_t(n) * KV);
        const float* K = k_cache_[l].data();
        const float* V = v_cache_[l].data();
        const int span_max = pos_ + n;
        auto attend = [&](int begin, int end) {
            thread_local std::vector<float> p;
            p.resize(static_cast<std::size_t>(span_max));
            for (int i = begin; i < end; ++i) {
                const int t = i / nh, h = i % nh, g = h / r;
                kernels::attend_one(q_.row(t) + h * hd, K + g * hd, V + g * hd, KV, pos_ + t + 1, hd, scale, p.data(),
                                    o_.row(t) + h * hd);
            }
        };
        // Each (token, head) pair is a task; below ~16K multiply-adds the caller does them all.
        if (std::int64_t(n) * nh * span_max * hd >= (1 << 14))
            dev_.parallel_for(n * nh, attend);
        else
            attend(0, n * nh);
        product(Projection::wo, o_.data(), M.wo, n, x_.data(), alpha, 1.0f);
        kernels::rmsnorm_forward(x_.data(), W.rms_ffn.data(), n, D, eps, f_.data(), rstd_.data());
        if (all_f32_) {
            dev_.ffn_forward(f_.data(), x_.data(), M.w1.f32(), M.w3.f32(), M.w2.f32(), n, D, H, alpha, h1_.data(),
                             h3_.data(), g_.data(), x_.data());
        } else {
            product(Projection::w1, f_.data(), M.w1, n, h1_.data());
            product(Projection::w3, f_.data(), M.w3, n, h3_.data());
            kernels::swiglu_forward(h1_.data(), h3_.data(), std::int64_t(n) * H, g_.data());
            product(Projection::w2, g_.data(), M.w2, n, x_.data(), alpha, 1.0f);
        }
    }
    const QuantMatrix& cls = w_.output();
    if (all_logits) {
        kernels::rmsnorm_forward(x_.data(), base_.rms_final.data(), n, D, eps, f_.data(), rstd_.data());
        dev_.quant_matmul_forward(f_.data(), cls, n, logits_.data());
        all_logits->insert(all_logits->end(), logits_.data(), logits_.data() + std::size_t(n) * c.vocab);
    } else {
        // Only the last token's logits are needed.
        kernels::rmsnorm_forward(x_.row(n - 1), base_.rms_final.data(), 1, D, eps, f_.data(), rstd_.data());
        dev_.quant_matmul_forward(f_.data(), cls, 1, logits_.data());
    }
    pos_ += n;
}

}  // namespace ane
