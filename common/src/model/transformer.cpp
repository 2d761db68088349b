#include "ane/model/transformer.hpp"

#include <cstring>

#include "ane/error.hpp"
#include "ane/memory_limit.hpp"
#include "ane/model/kernels.hpp"

namespace ane {

namespace {
Tensor buffer(std::int64_t rows, std::int64_t cols) { return Tensor({rows, cols}); }
}  // namespace

Transformer::Transformer(const Weights& weights, Device& device, int max_batch, VocabMap vocab_map, bool for_training,
                         int max_seq)
    : w_(weights), dev_(device), max_batch_(max_batch), max_seq_(max_seq > 0 ? max_seq : weights.config.seq),
      for_training_(for_training), map_(std::move(vocab_map)) {
    const ModelConfig& c = w_.config;
    require(max_batch >= 1, "batch must be at least 1");
    require(max_seq_ >= 1, "the window must be at least 1 token");
    {
        const double T = double(max_batch) * max_seq_, D = c.dim, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim();
        const double qk_norm = c.qk_norm ? Q + KV + c.heads + c.kv_heads : 0;
        const double per_layer = T * (6 * D + 2 * Q + 2 * KV + 3 * H + 2 + qk_norm) + double(max_batch) * c.heads * max_seq_ * max_seq_;
        const double layers = for_training ? c.layers : 1;
        const double logits = T * double(map_.compact_vocab());
        require_memory(4.0 * (per_layer * layers * (for_training ? 2.0 : 1.0) + logits),
                       "a batch of " + std::to_string(max_batch) + " windows of " + std::to_string(max_seq_) +
                           " tokens");
    }
    require(map_.full_vocab() == c.vocab, "vocabulary map covers ", map_.full_vocab(), " ids, the model has ",
            c.vocab);
    const std::int64_t T = std::int64_t(max_batch) * max_seq_;
    const std::int64_t D = c.dim, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), CV = map_.compact_vocab();
    acts_.resize(for_training ? c.layers : 1);
    for (auto& a : acts_) {
        a.x = buffer(T, D);
        a.a = buffer(T, D);
        a.rstd_att = buffer(T, 1);
        a.q = buffer(T, Q);
        a.k = buffer(T, KV);
        a.v = buffer(T, KV);
        a.o = buffer(T, Q);
        a.probs = Tensor({std::int64_t(max_batch) * c.heads, std::int64_t(max_seq_) * max_seq_});
        a.x2 = buffer(T, D);
        a.f = buffer(T, D);
        a.rstd_ffn = buffer(T, 1);
        a.h1 = buffer(T, H);
        a.h3 = buffer(T, H);
        a.g = buffer(T, H);
        if (c.qk_norm) {
            a.q_raw = buffer(T, Q);
            a.k_raw = buffer(T, KV);
            a.rstd_q = buffer(T * c.heads, 1);
            a.rstd_k = buffer(T * c.kv_heads, 1);
        }
    }
    x_final_in_ = buffer(T, D);
    xf_ = buffer(T, D);
    rstd_final_ = buffer(T, 1);
    logits_ = buffer(T, CV);
    if (CV < c.vocab) cembed_ = buffer(CV, D);  // the full vocabulary reads the weights themselves
    rope_cos_ = buffer(max_seq_, c.head_dim / 2);
    rope_sin_ = buffer(max_seq_, c.head_dim / 2);
    rope_divisors_ = c.rope_divisors();
    kernels::rope_tables(max_seq_, c.head_dim, c.rope_theta, rope_cos_.data(), rope_sin_.data(), rope_divisors_);
    inputs_.resize(static_cast<std::size_t>(T));
    weights_changed();
    if (!for_training) return;
    dy_ = buffer(T, D);
    dx2_ = buffer(T, D);
    da_ = buffer(T, D);
    dout_ = buffer(T, Q);
    dq_ = buffer(T, Q);
    dk_ = buffer(T, KV);
    dv_ = buffer(T, KV);
    dg_ = buffer(T, H);
    dh1_ = buffer(T, H);
    dh3_ = buffer(T, H);
    df_ = buffer(T, D);
    dxf_ = buffer(T, D);
    if (CV < c.vocab) gcembed_ = buffer(CV, D);  // the full vocabulary accumulates into the gradient itself
    if (c.qk_norm) {
        dq_raw_ = buffer(T, Q);
        dk_raw_ = buffer(T, KV);
    }
}

void Transformer::set_lora(const Lora* lora) {
    lora_ = lora;
    if (!lora) return;
    const ModelConfig& c = w_.config;
    require(lora->layers.size() == std::size_t(c.layers), "LoRA adapters have ", lora->layers.size(),
            " layers, the model ", c.layers);
    const std::int64_t T = std::int64_t(max_batch_) * max_seq_;
    for (std::size_t l = 0; l < acts_.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t) {
            Tensor& buf = acts_[l].lora_t[t];
            if (lora->targets[t] && buf.shape() != Shape{T, lora->rank}) buf = buffer(T, lora->rank);
        }
    if (for_training_) lora_dt_ = buffer(T, lora->rank);
}

void Transformer::lora_forward(int layer, LoraTarget t, const float* x, int T, float* y, float alpha) {
    if (!lora_ || !lora_->targets[t]) return;
    const LoraAdapter& ad = lora_->at(layer, t);
    const int r = lora_->rank, in = int(ad.a.cols()), out = int(ad.b.rows());
    float* tmp = acts(layer).lora_t[t].data();
    dev_.matmul_forward(x, ad.a.data(), T, r, in, tmp);
    dev_.matmul_forward(tmp, ad.b.data(), T, out, r, y, alpha, 1.0f);
}

void Transformer::lora_backward(int layer, LoraTarget t, const float* dy, const float* x, int T, float* dx,
                                float alpha, Lora* lora_grads) {
    if (!lora_ || !lora_->targets[t]) return;
    const LoraAdapter& ad = lora_->at(layer, t);
    LoraAdapter& g = lora_grads->at(layer, t);
    const int r = lora_->rank, in = int(ad.a.cols()), out = int(ad.b.rows());
    // y += alpha · t B^T with t = x A^T.
    dev_.matmul_weight_grad(dy, acts(layer).lora_t[t].data(), T, out, r, g.b.data(), alpha);
    dev_.matmul_input_grad(dy, ad.b.data(), T, out, r, lora_dt_.data(), alpha);
    dev_.matmul_weight_grad(lora_dt_.data(), x, T, r, in, g.a.data());
    dev_.matmul_input_grad(lora_dt_.data(), ad.a.data(), T, r, in, dx, 1.0f, 1.0f);
}

bool Transformer::lora_on(LoraTarget t) const { return lora_ && lora_->targets[t]; }

void qkv_extras_forward(const ModelConfig& c, const LayerWeights& W, int T, float* q, float* k, float* v, float* q_out,
                        float* k_out, float* rstd_q, float* rstd_k, WeightSource* source) {
    if (c.attention_bias) {
        kernels::add_bias(q, read(source, W.bq), T, c.q_dim());
        kernels::add_bias(k, read(source, W.bk), T, c.kv_dim());
        kernels::add_bias(v, read(source, W.bv), T, c.kv_dim());
    }
    if (c.qk_norm) {  // each head's vector is one RMSNorm row
        const float eps = float(c.norm_eps);
        kernels::rmsnorm_forward(q, read(source, W.q_norm), T * c.heads, c.head_dim, eps, q_out, rstd_q);
        kernels::rmsnorm_forward(k, read(source, W.k_norm), T * c.kv_heads, c.head_dim, eps, k_out, rstd_k);
    }
}

void Transformer::project(Projection p, const float* X, const Tensor& W, int M, int N, int K, float* Y, float alpha,
                          float beta) {
    if (source_)
        if (const WeightRows rows = source_->rows_of(W))
            return dev_.made_matmul_forward(X, rows, M, N, K, Y, alpha, beta);
    dev_.projection_forward(p, X, read(source_, W), M, N, K, Y, alpha, beta);
}

void Transformer::project_qkv(int l, const float* a, int T) {
    const ModelConfig& c = w_.config;
    const LayerWeights& W = w_.layers[l];
    LayerActs& A = acts(l);
    const int D = c.dim, Q = c.q_dim(), KV = c.kv_dim();
    float* q = c.qk_norm ? A.q_raw.data() : A.q.data();
    float* k = c.qk_norm ? A.k_raw.data() : A.k.data();
    if (source_) {
        project(Projection::wq, a, W.wq, T, Q, D, q);
        project(Projection::wk, a, W.wk, T, KV, D, k);
        project(Projection::wv, a, W.wv, T, KV, D, A.v.data());
    } else {
        dev_.qkv_forward(a, W.wq.data(), W.wk.data(), W.wv.data(), T, D, Q, KV, q, k, A.v.data());
    }
    lora_forward(l, kWq, a, T, q);
    lora_forward(l, kWk, a, T, k);
    lora_forward(l, kWv, a, T, A.v.data());
    ScopedTimer timer(dev_.profile().elementwise_s);
    qkv_extras_forward(c, W, T, q, k, A.v.data(), A.q.data(), A.k.data(), A.rstd_q.data(), A.rstd_k.data(), source_);
}

void Transformer::qkv_extras_backward(int l, int T, float*& dq, float*& dk, LayerWeights& G) {
    const ModelConfig& c = w_.config;
    const LayerWeights& W = w_.layers[l];
    LayerActs& A = acts(l);
    ScopedTimer timer(dev_.profile().elementwise_s);
    if (c.qk_norm) {
        std::memset(dq_raw_.data(), 0, dq_raw_.bytes());
        std::memset(dk_raw_.data(), 0, dk_raw_.bytes());
        // Weights::zeros and Weights::norms_only both have room for the gains.
        require(!G.q_norm.empty() && !G.k_norm.empty(), "backward: no gradient tensors for q_norm and k_norm");
        kernels::rmsnorm_backward(A.q_raw.data(), W.q_norm.data(), A.rstd_q.data(), dq, T * c.heads, c.head_dim,
                                  dq_raw_.data(), G.q_norm.data());
        kernels::rmsnorm_backward(A.k_raw.data(), W.k_norm.data(), A.rstd_k.data(), dk, T * c.kv_heads, c.head_dim,
                                  dk_raw_.data(), G.k_norm.data());
        dq = dq_raw_.data();
        dk = dk_raw_.data();
    }
    if (c.attention_bias) {
        if (!G.bq.empty()) kernels::bias_grad(dq, T, c.q_dim(), G.bq.data());
        if (!G.bk.empty()) kernels::bias_grad(dk, T, c.kv_dim(), G.bk.data());
        if (!G.bv.empty()) kernels::bias_grad(dv_.data(), T, c.kv_dim(), G.bv.data());
    }
}

void Transformer::weights_changed() {
    dev_.weights_changed();
    const Tensor& src = w_.config.tied ? w_.embed : w_.classifier;
    if (cembed_.empty()) {
        classifier_ = src.data();
        return;
    }
    const std::size_t row = std::size_t(w_.config.dim) * sizeof(float);
    for (int c = 0; c < map_.compact_vocab(); ++c) std::memcpy(cembed_.row(c), src.row(map_.to_full(c)), row);
    classifier_ = cembed_.data();
}

void Transformer::forward(const std::int32_t* inputs, int B, int S, int score_from) {
    const ModelConfig& c = w_.config;
    require(B >= 1 && B <= max_batch_ && S >= 1 && S <= max_seq_, "forward: batch ", B, " x ", S,
            " tokens exceeds the model's buffers (", max_batch_, " x ", max_seq_, ")");
    require(score_from >= 0 && score_from < S, "forward: score_from ", score_from, " outside [0, ", S, ")");
    B_ = B;
    S_ = S;
    score_from_ = score_from;
    const int T = B * S, D = c.dim, H = c.hidden, Q = c.q_dim();
    const float eps = float(c.norm_eps), alpha = float(c.residual_scale);
    std::memcpy(inputs_.data(), inputs, sizeof(std::int32_t) * std::size_t(T));
    dev_.begin_pass(B, S);
    DeviceProfile& prof = dev_.profile();
    {
        ScopedTimer timer(prof.elementwise_s);
        float* x0 = acts_[0].x.data();
        for (int t = 0; t < T; ++t) {
            require(inputs[t] >= 0 && inputs[t] < c.vocab, "forward: token id ", inputs[t], " is outside the vocabulary of ",
                    c.vocab);
            if (source_)
                source_->row(w_.embed, inputs[t], x0 + std::int64_t(t) * D);
            else
                std::memcpy(x0 + std::int64_t(t) * D, w_.embed.row(inputs[t]), sizeof(float) * std::size_t(D));
        }
    }
    for (int l = 0; l < c.layers; ++l) {
        const LayerWeights& W = w_.layers[l];
        LayerActs& A = acts(l);
        {
            ScopedTimer timer(prof.elementwise_s);
            kernels::rmsnorm_forward(A.x.data(), read(source_, W.rms_att), T, D, eps, A.a.data(), A.rstd_att.data());
        }
        const AttentionShape shape{B, S, c.heads, c.kv_heads, c.head_dim};
        const RopeTables rope{rope_cos_.data(), rope_sin_.data(), c.rope_theta, rope_divisors_};
        // Adapters, biases and QK-norm go between the projections and RoPE.
        // A weight source's matrices go one product each (project()), not through the blocks.
        if (source_ || lora_on(kWq) || lora_on(kWk) || lora_on(kWv) || c.attention_bias || c.qk_norm) {
            project_qkv(l, A.a.data(), T);
            rope_and_attention(dev_, shape, rope, A.q.data(), A.k.data(), A.v.data(), A.o.data(), A.probs.data());
        } else {
            dev_.sdpa_forward(A.a.data(), W.wq.data(), W.wk.data(), W.wv.data(), D, shape, rope,
                              A.q.data(), A.k.data(), A.v.data(), A.o.data(), A.probs.data());
        }
        // x2 = x + α · o Wo^T
        std::memcpy(A.x2.data(), A.x.data(), sizeof(float) * std::size_t(T) * D);
        project(Projection::wo, A.o.data(), W.wo, T, D, Q, A.x2.data(), alpha, 1.0f);
        lora_forward(l, kWo, A.o.data(), T, A.x2.data(), alpha);
        {
            ScopedTimer timer(prof.elementwise_s);
            kernels::rmsnorm_forward(A.x2.data(), read(source_, W.rms_ffn), T, D, eps, A.f.data(), A.rstd_ffn.data());
        }
        float* next = l + 1 < c.layers ? acts(l + 1).x.data() : x_final_in_.data();
        if (source_ || lora_on(kW1) || lora_on(kW3) || lora_on(kW2)) {
            project(Projection::w1, A.f.data(), W.w1, T, H, D, A.h1.data());
            project(Projection::w3, A.f.data(), W.w3, T, H, D, A.h3.data());
            lora_forward(l, kW1, A.f.data(), T, A.h1.data());
            lora_forward(l, kW3, A.f.data(), T, A.h3.data());
            {
                ScopedTimer timer(prof.elementwise_s);
                kernels::swiglu_forward(A.h1.data(), A.h3.data(), std::int64_t(T) * H, A.g.data());
            }
            std::memcpy(next, A.x2.data(), sizeof(float) * std::size_t(T) * D);
            project(Projection::w2, A.g.data(), W.w2, T, D, H, next, alpha, 1.0f);
            lora_forward(l, kW2, A.g.data(), T, next, alpha);
        } else {
            dev_.ffn_forward(A.f.data(), A.x2.data(), W.w1.data(), W.w3.data(), W.w2.data(), T, D, H, alpha,
                             A.h1.data(), A.h3.data(), A.g.data(), next);
        }
    }
    {
        ScopedTimer timer(prof.elementwise_s);
        kernels::rmsnorm_forward(x_final_in_.data(), read(source_, w_.rms_final), T, D, eps, xf_.data(),
                                 rstd_final_.data());
    }
    const float* classifier = classifier_;
    WeightRows made_classifier;
    if (source_) {
        const Tensor& src = c.tied ? w_.embed : w_.classifier;
        if (cembed_.empty()) {
            made_classifier = source_->rows_of(src);
            if (!made_classifier) classifier = source_->view(src);
        } else {
            for (int v = 0; v < map_.compact_vocab(); ++v) source_->row(src, map_.to_full(v), cembed_.row(v));
        }
    }
    const auto classify = [&](const float* x, int rows) {
        if (made_classifier)
            dev_.made_matmul_forward(x, made_classifier, rows, map_.compact_vocab(), D, logits_.data());
        else if (source_)  // a view of the source's, not a weight that stays until weights_changed()
            dev_.matmul_forward(x, classifier, rows, map_.compact_vocab(), D, logits_.data());
        else
            dev_.weight_forward(x, classifier, rows, map_.compact_vocab(), D, logits_.data());
    };
    if (score_from == 0) return classify(xf_.data(), T);
    // Only the scored positions go through the classifier.
    const int R = S - score_from;
    if (xf_scored_.empty()) xf_scored_ = buffer(std::int64_t(max_batch_) * max_seq_, D);
    for (int b = 0; b < B; ++b)
        std::memcpy(xf_scored_.row(std::int64_t(b) * R), xf_.row(std::int64_t(b) * S + score_from),
                    sizeof(float) * std::size_t(R) * D);
    classify(xf_scored_.data(), B * R);
}

int Transformer::scored_rows_checked(const std::int32_t* compact_targets) const {
    const int T = B_ * (S_ - score_from_);
    for (int t = 0; t < T; ++t)
        require(compact_targets[t] >= 0 && compact_targets[t] < map_.compact_vocab(), "target ", compact_targets[t],
                " at position ", t, " is outside the compact vocabulary of ", map_.compact_vocab());
    return T;
}

double Transformer::loss_and_dlogits(const std::int32_t* compact_targets, float grad_scale) {
    ScopedTimer timer(dev_.profile().elementwise_s);
    const int T = scored_rows_checked(compact_targets);
    return kernels::cross_entropy(logits_.data(), compact_targets, T, map_.compact_vocab(), grad_scale);
}

double Transformer::loss(const std::int32_t* compact_targets) {
    ScopedTimer timer(dev_.profile().elementwise_s);
    const int T = scored_rows_checked(compact_targets);
    row_loss_.resize(std::size_t(T));
    kernels::cross_entropy_rows(logits_.data(), compact_targets, T, map_.compact_vocab(), row_loss_.data());
    double total = 0;
    for (double l : row_loss_) total += l;
    return total / T;
}

void Transformer::backward(Weights& grads, Lora* lora_grads, const std::function<void(int)>& layer_done) {
    require(for_training_, "backward on a model built for inference only");
    require(source_ == nullptr, "backward with a weight source attached");
    require(score_from_ == 0, "backward after an evaluation-only forward");
    require((lora_grads != nullptr) == (lora_ != nullptr), "backward: LoRA gradients need LoRA attached, and back");
    const ModelConfig& c = w_.config;
    const int B = B_, S = S_, T = B * S, D = c.dim, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim();
    const int CV = map_.compact_vocab();
    const float alpha = float(c.residual_scale);
    DeviceProfile& prof = dev_.profile();
    const std::size_t tdf = sizeof(float) * std::size_t(T) * D;
    dev_.begin_pass(B, S);
    // Weight gradients land only in the tensors the caller gave room for.
    auto weight_grad = [&](const float* dY, const float* X, int N, int K, Tensor& into, float a = 1.0f) {
        if (!into.empty()) dev_.matmul_weight_grad(dY, X, T, N, K, into.data(), a);
    };
    Tensor& gcls = c.tied ? grads.embed : grads.classifier;

    // Classifier: dxf = dlogits · cembed; gcembed = dlogits^T · xf.
    dev_.weight_input_grad(logits_.data(), classifier_, T, CV, D, dxf_.data());
    if (!gcls.empty() && gcembed_.empty()) {
        dev_.matmul_weight_grad(logits_.data(), xf_.data(), T, CV, D, gcls.data());
    } else if (!gcls.empty()) {
        std::memset(gcembed_.data(), 0, gcembed_.bytes());
        dev_.matmul_weight_grad(logits_.data(), xf_.data(), T, CV, D, gcembed_.data());
    }
    {
        ScopedTimer timer(prof.elementwise_s);
        std::memset(dy_.data(), 0, tdf);
        kernels::rmsnorm_backward(x_final_in_.data(), w_.rms_final.data(), rstd_final_.data(), dxf_.data(), T, D,
                                  dy_.data(), grads.rms_final.data());
    }
    for (int l = c.layers - 1; l >= 0; --l) {
        const LayerWeights& W = w_.layers[l];
        LayerWeights& G = grads.layers[l];
        LayerActs& A = acts(l);
        // FFN: x_next = x2 + α W2 g.
        dev_.projection_input_grad(Projection::w2, dy_.data(), W.w2.data(), T, D, H, dg_.data(), alpha);
        weight_grad(dy_.data(), A.g.data(), D, H, G.w2, alpha);
        lora_backward(l, kW2, dy_.data(), A.g.data(), T, dg_.data(), alpha, lora_grads);
        {
            ScopedTimer timer(prof.elementwise_s);
            kernels::swiglu_backward(A.h1.data(), A.h3.data(), dg_.data(), std::int64_t(T) * H, dh1_.data(),
                                     dh3_.data());
        }
        weight_grad(dh1_.data(), A.f.data(), H, D, G.w1);
        weight_grad(dh3_.data(), A.f.data(), H, D, G.w3);
        dev_.ffn_input_grad(dh1_.data(), dh3_.data(), W.w1.data(), W.w3.data(), T, H, D, df_.data());
        lora_backward(l, kW1, dh1_.data(), A.f.data(), T, df_.data(), 1.0f, lora_grads);
        lora_backward(l, kW3, dh3_.data(), A.f.data(), T, df_.data(), 1.0f, lora_grads);
        {
            ScopedTimer timer(prof.elementwise_s);
            std::memcpy(dx2_.data(), dy_.data(), tdf);
            kernels::rmsnorm_backward(A.x2.data(), W.rms_ffn.data(), A.rstd_ffn.data(), df_.data(), T, D, dx2_.data(),
                                      G.rms_ffn.data());
        }
        // Attention: x2 = x + α Wo o.
        dev_.projection_input_grad(Projection::wo, dx2_.data(), W.wo.data(), T, D, Q, dout_.data(), alpha);
        weight_grad(dx2_.data(), A.o.data(), D, Q, G.wo, alpha);
        lora_backward(l, kWo, dx2_.data(), A.o.data(), T, dout_.data(), alpha, lora_grads);
        dev_.sdpa_backward(A.q.data(), A.k.data(), A.v.data(), A.probs.data(), dout_.data(),
                           AttentionShape{B, S, c.heads, c.kv_heads, c.head_dim}, dq_.data(), dk_.data(), dv_.data());
        {
            ScopedTimer timer(prof.elementwise_s);
            kernels::rope_apply(dq_.data(), T, S, c.heads, c.head_dim, rope_cos_.data(), rope_sin_.data(), true);
            kernels::rope_apply(dk_.data(), T, S, c.kv_heads, c.head_dim, rope_cos_.data(), rope_sin_.data(), true);
        }
        float* dq = dq_.data();
        float* dk = dk_.data();
        qkv_extras_backward(l, T, dq, dk, G);
        weight_grad(dq, A.a.data(), Q, D, G.wq);
        weight_grad(dk, A.a.data(), KV, D, G.wk);
        weight_grad(dv_.data(), A.a.data(), KV, D, G.wv);
        dev_.projection_input_grad(Projection::wq, dq, W.wq.data(), T, Q, D, da_.data());
        dev_.kv_input_grad(dk, dv_.data(), W.wk.data(), W.wv.data(), T, KV, D, da_.data());
        lora_backward(l, kWq, dq, A.a.data(), T, da_.data(), 1.0f, lora_grads);
        lora_backward(l, kWk, dk, A.a.data(), T, da_.data(), 1.0f, lora_grads);
        lora_backward(l, kWv, dv_.data(), A.a.data(), T, da_.data(), 1.0f, lora_grads);
        {
            ScopedTimer timer(prof.elementwise_s);
            std::memcpy(dy_.data(), dx2_.data(), tdf);
            kernels::rmsnorm_backward(A.x.data(), W.rms_att.data(), A.rstd_att.data(), da_.data(), T, D, dy_.data(),
                                      G.rms_att.data());
        }
        if (layer_done) layer_done(l);
    }
    ScopedTimer timer(prof.elementwise_s);
    if (!grads.embed.empty())
        for (int t = 0; t < T; ++t) {
            float* row = grads.embed.row(inputs_[t]);
            const float* d = dy_.row(t);
            for (int i = 0; i < D; ++i) row[i] += d[i];
        }
    if (!gcls.empty() && !gcembed_.empty())
        for (int cv = 0; cv < CV; ++cv) {
            float* row = gcls.row(map_.to_full(cv));
            const float* d = gcembed_.row(cv);
            for (int i = 0; i < D; ++i) row[i] += d[i];
        }
}

}  // namespace ane
