#include "ane/model/decoder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ane/device/attend_f16.hpp"
#include "ane/error.hpp"
#include "ane/half.hpp"
#include "ane/memory_limit.hpp"
#include "ane/model/kernels.hpp"
#include "ane/model/transformer.hpp"

namespace ane {

KvCache parse_kv_cache(const std::string& name) {
    if (name == "f32") return KvCache::f32;
    if (name == "f16") return KvCache::f16;
    throw usage_error("--kv-cache ", name, ": unknown cache type (f32 or f16)");
}

const char* kv_cache_name(KvCache kv) { return kv == KvCache::f16 ? "f16" : "f32"; }

Decoder::Decoder(const Weights& weights, Device& device, int context, int max_chunk)
    : Decoder(InferenceWeights::view(weights), device, context, max_chunk, 1, /*keep_copy=*/true, KvCache::f32) {}

Decoder::Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk, int sequences,
                 KvCache kv)
    : Decoder(weights, device, context, max_chunk, sequences, /*keep_copy=*/false, kv) {}

// keep_copy: `weights` is a temporary set of views, kept here.
Decoder::Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk, int sequences,
                 bool keep_copy, KvCache kv)
    : view_(keep_copy ? weights : InferenceWeights{}),
      w_(keep_copy ? view_ : weights),
      base_(*weights.base),
      all_f32_(weights.all_f32()),
      dev_(device),
      context_(context),
      max_chunk_(std::max({1, std::min(max_chunk, context), sequences})),
      pos_(std::size_t(std::max(1, sequences)), 0),
      kv_(kv) {
    const ModelConfig& c = base_.config;
    require(context >= 1, "context must be at least 1");
    require(sequences >= 1, "at least one sequence");
    const double value_bytes = kv == KvCache::f16 ? 2.0 : 4.0;
    require_memory(value_bytes * 2.0 * sequences * c.layers * double(context) * c.kv_dim() +
                       4.0 * double(context) * c.head_dim,
                   std::to_string(sequences) + " context(s) of " + std::to_string(context) + " tokens");
    const std::int64_t T = max_chunk_, D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden;
    for (int s = 0; s < sequences; ++s)
        for (int l = 0; l < c.layers; ++l) {
            if (kv == KvCache::f16) {
                k16_.emplace_back(std::size_t(context) * std::size_t(KV));
                v16_.emplace_back(std::size_t(context) * std::size_t(KV));
            } else {
                k_cache_.emplace_back(Shape{context, KV});
                v_cache_.emplace_back(Shape{context, KV});
            }
        }
    row_seq_.resize(std::size_t(T));
    row_pos_.resize(std::size_t(T));
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

const float* Decoder::feed(const std::int32_t* tokens, int n, std::vector<float>* all_logits, int sequence) {
    require(n >= 1, "nothing to decode");
    require(sequence >= 0 && sequence < sequences(), "no sequence ", sequence);
    int& pos = pos_[std::size_t(sequence)];
    require(pos + n <= context_, "the context of ", context_, " tokens is full (", pos, " used, ", n, " more asked)");
    if (all_logits) all_logits->clear();
    const int V = base_.config.vocab;
    int last = 0;
    for (int i = 0; i < n; i += max_chunk_) {
        last = std::min(max_chunk_, n - i);
        for (int t = 0; t < last; ++t) {
            row_seq_[std::size_t(t)] = sequence;
            row_pos_[std::size_t(t)] = pos + t;
        }
        feed_rows(tokens + i, row_seq_.data(), row_pos_.data(), last, all_logits != nullptr);
        if (all_logits) all_logits->insert(all_logits->end(), logits_.data(), logits_.data() + std::size_t(last) * V);
        pos += last;
    }
    return logits_.row(all_logits ? last - 1 : 0);
}

const float* Decoder::feed_batch(const std::int32_t* tokens, const int* sequences, int n) {
    require(n >= 1 && n <= max_chunk_, "a batch of ", n, " tokens (1 to ", max_chunk_, ")");
    for (int t = 0; t < n; ++t) {
        const int s = sequences[t];
        require(s >= 0 && s < this->sequences(), "no sequence ", s);
        for (int u = 0; u < t; ++u) require(sequences[u] != s, "sequence ", s, " twice in one batch");
        require(pos_[std::size_t(s)] < context_, "the context of ", context_, " tokens of sequence ", s, " is full");
        row_seq_[std::size_t(t)] = s;
        row_pos_[std::size_t(t)] = pos_[std::size_t(s)];
    }
    feed_rows(tokens, row_seq_.data(), row_pos_.data(), n, true);
    for (int t = 0; t < n; ++t) ++pos_[std::size_t(sequences[t])];
    return logits_.data();
}

const float* Decoder::feed_windows(const std::int32_t* tokens, int windows, int L) {
    require(windows >= 1 && windows <= sequences() && L >= 1 && L <= context_ && windows * L <= max_chunk_,
            windows, " windows of ", L, " tokens do not fit (", sequences(), " sequences, ", max_chunk_, " rows)");
    for (int w = 0; w < windows; ++w)
        for (int t = 0; t < L; ++t) {
            row_seq_[std::size_t(w) * L + t] = w;
            row_pos_[std::size_t(w) * L + t] = t;
        }
    const std::int64_t probs = std::int64_t(windows) * base_.config.heads * L * L;
    if (probs_.numel() < probs) {
        require_memory(4.0 * double(probs), "the attention of " + std::to_string(windows) + " windows of " +
                                                std::to_string(L) + " tokens");
        probs_ = Tensor({probs});
    }
    feed_rows(tokens, row_seq_.data(), row_pos_.data(), windows * L, true, windows);
    for (int w = 0; w < windows; ++w) pos_[std::size_t(w)] = L;
    return logits_.data();
}

void Decoder::product(Projection p, const float* X, const QuantMatrix& W, int n, float* Y, float alpha, float beta) {
    if (const float* w = W.f32()) return dev_.projection_forward(p, X, w, n, W.rows(), W.cols(), Y, alpha, beta);
    dev_.quant_matmul_forward(X, W, n, Y, alpha, beta);
}

void Decoder::feed_rows(const std::int32_t* tokens, const int* seq, const int* pos, int n, bool all_rows,
                        int windows) {
    const ModelConfig& c = base_.config;
    const int D = c.dim, Q = c.q_dim(), KV = c.kv_dim(), H = c.hidden, hd = c.head_dim;
    const int nh = c.heads, nkv = c.kv_heads, r = nh / nkv;
    const float eps = float(c.norm_eps), alpha = float(c.residual_scale), scale = 1.0f / std::sqrt(float(hd));
    for (int t = 0; t < n; ++t) {
        require(tokens[t] >= 0 && tokens[t] < c.vocab, "token id ", tokens[t], " is outside the vocabulary of ", c.vocab);
        w_.embed.decode_rows(tokens[t], tokens[t] + 1, x_.row(t));
    }
    dev_.begin_pass(1, n);
    // Rows at consecutive positions of one sequence (a prompt) take RoPE in one call.
    bool consecutive = true;
    for (int t = 1; t < n; ++t) consecutive = consecutive && seq[t] == seq[0] && pos[t] == pos[0] + t;
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
        // Row t at position pos[t]: the tables from row pos[t] on, never wrapping.
        for (int t = 0; t < n; t += consecutive ? n : 1) {
            const int rows = consecutive ? n : 1;
            kernels::rope_apply(q_.row(t), rows, context_, nh, hd, rope_cos_.row(pos[t]), rope_sin_.row(pos[t]), false);
            kernels::rope_apply(k_.row(t), rows, context_, nkv, hd, rope_cos_.row(pos[t]), rope_sin_.row(pos[t]), false);
        }
        int span_max = 0;
        for (int t = 0; t < n; ++t) {
            const std::size_t cache = std::size_t(seq[t]) * c.layers + l;
            if (kv_ == KvCache::f16) {
                for (int g = 0; g < nkv; ++g) {
                    const std::size_t at = (std::size_t(g) * context_ + std::size_t(pos[t])) * std::size_t(hd);
                    float_to_fp16(k_.row(t) + g * hd, k16_[cache].data() + at, std::size_t(hd));
                    float_to_fp16(v_.row(t) + g * hd, v16_[cache].data() + at, std::size_t(hd));
                }
            } else {
                std::memcpy(k_cache_[cache].row(pos[t]), k_.row(t), sizeof(float) * std::size_t(KV));
                std::memcpy(v_cache_[cache].row(pos[t]), v_.row(t), sizeof(float) * std::size_t(KV));
            }
            span_max = std::max(span_max, pos[t] + 1);
        }
        // One sequence (a prompt chunk): head by head, so that a thread's tasks share one KV
        // head's cache; several (batch decoding): token by token.
        bool one_sequence = true;
        for (int t = 1; t < n; ++t) one_sequence = one_sequence && seq[t] == seq[0];
        const MatvecIsa isa = best_matvec_isa();
        auto attend = [&](int begin, int end) {
            thread_local std::vector<float> p;
            p.resize(static_cast<std::size_t>(span_max));
            for (int i = begin; i < end; ++i) {
                const int t = one_sequence ? i % n : i / nh, h = one_sequence ? i / n : i % nh, g = h / r;
                const int span = pos[t] + 1;
                const std::size_t cache = std::size_t(seq[t]) * c.layers + l;
                if (kv_ == KvCache::f16) {
                    const std::size_t at = std::size_t(g) * context_ * std::size_t(hd);
                    attend_one_f16(isa, q_.row(t) + h * hd, k16_[cache].data() + at, v16_[cache].data() + at, span, hd,
                                   scale, p.data(), o_.row(t) + h * hd);
                } else {
                    kernels::attend_one(q_.row(t) + h * hd, k_cache_[cache].data() + g * hd,
                                        v_cache_[cache].data() + g * hd, KV, span, hd, scale, p.data(),
                                        o_.row(t) + h * hd);
                }
            }
        };
        if (windows > 0) {  // whole windows: blocked causal attention, as the training forward runs it
            dev_.attention_forward(q_.data(), k_.data(), v_.data(), windows, n / windows, nh, nkv, hd, o_.data(),
                                   probs_.data());
        } else if (std::int64_t(n) * nh * span_max * hd >= (1 << 14)) {
            // Each (token, head) pair is a task; below ~16K multiply-adds the caller does them all.
            dev_.parallel_for(n * nh, attend);
        } else {
            attend(0, n * nh);
        }
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
    if (all_rows) {
        kernels::rmsnorm_forward(x_.data(), base_.rms_final.data(), n, D, eps, f_.data(), rstd_.data());
        dev_.quant_matmul_forward(f_.data(), cls, n, logits_.data());
    } else {
        // Only the last token's logits are needed.
        kernels::rmsnorm_forward(x_.row(n - 1), base_.rms_final.data(), 1, D, eps, f_.data(), rstd_.data());
        dev_.quant_matmul_forward(f_.data(), cls, 1, logits_.data());
    }
}

}  // namespace ane
