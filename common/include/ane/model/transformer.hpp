#pragma once
// The Llama-family transformer (spec/model.md): forward, backward with every gradient, on a
// Device. Processes B sequences of S tokens at once (T = B*S rows per matrix product).
// Activations for backward are kept from the last forward; nothing is allocated per step.
#include <cstdint>
#include <functional>
#include <vector>

#include "ane/device/device.hpp"
#include "ane/mezo/lora.hpp"
#include "ane/model/weight_source.hpp"
#include "ane/vocab_map.hpp"
#include "ane/weights.hpp"

namespace ane {

// The family extras between the q/k/v projections and RoPE, for T tokens: the biases added in
// place (Qwen2), then each head of q and k RMS-normalised (Qwen3) into q_out, k_out (q, k
// themselves for in place), each head's 1/rms into rstd_q, rstd_k. Nothing for a Llama.
// The biases and gains are read through `source` when there is one.
void qkv_extras_forward(const ModelConfig& c, const LayerWeights& W, int T, float* q, float* k, float* v, float* q_out,
                        float* k_out, float* rstd_q, float* rstd_k, WeightSource* source = nullptr);

class Transformer {
public:
    // `weights` and `device` must outlive the model. The classifier covers the ids of
    // `vocab_map` (the compact vocabulary; VocabMap::identity for the full one).
    // Without `for_training`, only one layer's activations are kept (reused layer after
    // layer) and no backward buffers exist: the memory of inference. Sequences are at most
    // `max_seq` tokens (default: the model's context, config.seq); RoPE extends to any length.
    Transformer(const Weights& weights, Device& device, int max_batch, VocabMap vocab_map, bool for_training = true,
                int max_seq = 0);

    // LoRA-split: adds B·(A·x) after each adapted projection; the base weights stay as they
    // are. `lora` must outlive its use; nullptr detaches.
    void set_lora(const Lora* lora);

    // Call after every change of the base weights (an update, a perturbation, a LoRA merge):
    // copies the classifier rows of the compact vocabulary again and tells the device, which
    // may hold staged copies. (Adapters attached with set_lora are read in place.)
    void weights_changed();

    // Forward passes read every weight through `source` (MeZO's perturbation made per
    // product); nullptr reads them in place again. The compact classifier rows are then
    // copied through the source at each forward: call weights_changed() after detaching.
    // backward() is not available while a source is attached.
    void set_weight_source(WeightSource* source) { source_ = source; }

    // Forward over B sequences of S <= max_seq tokens (inputs: full ids, row-major [B, S]).
    // Leaves logits [B*S, CV] in logits(). With score_from > 0 (evaluation), only positions
    // score_from..S-1 of each sequence get logits: [B*(S-score_from), CV], and backward() is
    // not available.
    void forward(const std::int32_t* inputs, int B, int S, int score_from = 0);
    // Mean cross-entropy of the last forward against compact targets; turns the logits into
    // dlogits (times grad_scale / T) for backward().
    double loss_and_dlogits(const std::int32_t* compact_targets, float grad_scale);
    // The same mean cross-entropy, leaving the logits as they are (no backward follows).
    double loss(const std::int32_t* compact_targets);
    // Accumulates the gradient of the last forward into grads, skipping tensors left empty
    // there (a frozen base: Weights::norms_only). With LoRA attached, lora_grads (shaped like
    // the adapters) receives the adapters' gradients. `layer_done(l)` is called as soon as
    // layer l's gradients are complete (last layer first), e.g. to start sending them.
    void backward(Weights& grads, Lora* lora_grads = nullptr, const std::function<void(int)>& layer_done = {});

    const float* logits() const { return logits_.data(); }
    int compact_vocab() const { return map_.compact_vocab(); }
    const VocabMap& vocab_map() const { return map_; }
    int max_batch() const { return max_batch_; }
    int max_seq() const { return max_seq_; }
    const ModelConfig& config() const { return w_.config; }

private:
    struct LayerActs {
        Tensor x, a, rstd_att, q, k, v, o, probs, x2, f, rstd_ffn, h1, h3, g;
        Tensor q_raw, k_raw, rstd_q, rstd_k;  // QK-norm: q, k before the norm, per-head 1/rms
        std::array<Tensor, kLoraTargetCount> lora_t;  // A·x per adapted projection [T, rank]
    };
    bool lora_on(LoraTarget t) const;
    // Y = alpha X·Wᵀ + beta Y for one projection: with a weight source, W made in panels by
    // the device where the source can make its rows, else the source's view of W.
    void project(Projection p, const float* X, const Tensor& W, int M, int N, int K, float* Y, float alpha = 1.0f,
                 float beta = 0.0f);
    // q, k, v of layer l into A, through the adapters, biases and QK-norm when there are any.
    void project_qkv(int layer, const float* a, int T);
    // dq, dk (before RoPE backward undone: of the normed q, k) back to the projections' outputs.
    void qkv_extras_backward(int layer, int T, float*& dq, float*& dk, LayerWeights& G);
    LayerActs& acts(int layer) { return acts_[std::size_t(layer) % acts_.size()]; }
    // Rows the last forward scored; throws if a target is outside the compact vocabulary.
    int scored_rows_checked(const std::int32_t* compact_targets) const;
    // y[T, out] += alpha · (x A^T) B^T for an adapted projection.
    void lora_forward(int layer, LoraTarget t, const float* x, int T, float* y, float alpha = 1.0f);
    // Given dy of an adapted projection: dA, dB into lora_grads; dx += alpha · (dy B) A.
    // Nothing without LoRA attached (backward() checks lora_grads is given exactly then).
    void lora_backward(int layer, LoraTarget t, const float* dy, const float* x, int T, float* dx, float alpha,
                       Lora* lora_grads);
    const Weights& w_;
    Device& dev_;
    int max_batch_, max_seq_;
    bool for_training_;
    const Lora* lora_ = nullptr;
    WeightSource* source_ = nullptr;
    Tensor lora_dt_;
    VocabMap map_;
    int B_ = 0, S_ = 0, score_from_ = 0;
    std::vector<std::int32_t> inputs_;
    std::vector<double> row_loss_;
    std::vector<LayerActs> acts_;
    Tensor x_final_in_, xf_, xf_scored_, rstd_final_, logits_;
    Tensor cembed_;  // classifier rows of the compact vocabulary (empty for the full one)
    const float* classifier_ = nullptr;
    Tensor rope_cos_, rope_sin_;
    std::vector<double> rope_divisors_;
    // Backward scratch.
    Tensor dy_, dx2_, da_, dout_, dq_, dk_, dv_, dg_, dh1_, dh3_, df_, dxf_, gcembed_;
    Tensor dq_raw_, dk_raw_;  // QK-norm only
};

}  // namespace ane
