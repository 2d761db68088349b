#pragma once
// Incremental decoding with a key/value cache: the same weights and math as Transformer,
// processing new tokens (a whole prompt at once, then one at a time) against the cached keys
// and values of the tokens before them.
#include <cstdint>
#include <vector>

#include "ane/device/device.hpp"
#include "ane/model/inference_weights.hpp"
#include "ane/weights.hpp"

namespace ane {

class Decoder {
public:
    // context: the most positions the cache holds (at most the model's seq unless overridden).
    Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk = 512);
    // Float32 weights, viewed (they must outlive the decoder).
    Decoder(const Weights& weights, Device& device, int context, int max_chunk = 512);

    int context() const { return context_; }
    int position() const { return pos_; }  // tokens processed so far
    void reset() { pos_ = 0; }

    // Processes n tokens at positions position()..position()+n-1 and returns the logits of the
    // last one ([vocab]); all_logits, when set, receives [n, vocab]. Throws when the context
    // would overflow.
    const float* feed(const std::int32_t* tokens, int n, std::vector<float>* all_logits = nullptr);

private:
    Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk, bool keep_copy);
    void feed_chunk(const std::int32_t* tokens, int n, std::vector<float>* all_logits);
    void product(Projection p, const float* X, const QuantMatrix& W, int n, float* Y, float alpha = 1.0f,
                 float beta = 0.0f);
    InferenceWeights view_;  // when made from float32 Weights
    const InferenceWeights& w_;
    const Weights& base_;    // norms, biases
    bool all_f32_;
    Device& dev_;
    int context_, max_chunk_, pos_ = 0;
    std::vector<Tensor> k_cache_, v_cache_;  // per layer [context, kv_dim]
    Tensor rope_cos_, rope_sin_;
    Tensor x_, a_, q_, k_, v_, o_, f_, h1_, h3_, g_, rstd_, logits_;
    Tensor rstd_heads_;  // QK-norm only
};

}  // namespace ane
