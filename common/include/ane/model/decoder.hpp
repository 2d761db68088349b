#pragma once
// Incremental decoding with a key/value cache: the same weights and math as Transformer,
// processing new tokens (a whole prompt at once, then one at a time) against the cached keys
// and values of the tokens before them.
#include <cstdint>
#include <string>
#include <vector>

#include "ane/device/device.hpp"
#include "ane/model/inference_weights.hpp"
#include "ane/weights.hpp"

namespace ane {

// What the key/value cache stores: float32 (exactly what the batched forward computes), or
// fp16 as llama.cpp keeps it by default: half the bytes each decoded token reads back, which
// at long contexts is as much as the weights of a 4-bit model.
enum class KvCache { f32, f16 };
KvCache parse_kv_cache(const std::string& name);  // "f32" or "f16"; else a usage error
const char* kv_cache_name(KvCache kv);

class Decoder {
public:
    // context: the most positions the cache holds (at most the model's seq unless overridden);
    // sequences: how many independent caches (batch decoding: one token of each sequence per
    // step, all in one product per weight).
    Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk = 512, int sequences = 1,
            KvCache kv = KvCache::f32);
    // Float32 weights, viewed (they must outlive the decoder).
    Decoder(const Weights& weights, Device& device, int context, int max_chunk = 512);

    int context() const { return context_; }
    int sequences() const { return int(pos_.size()); }
    int position(int sequence = 0) const { return pos_[std::size_t(sequence)]; }  // tokens processed so far
    void reset(int sequence = 0) { pos_[std::size_t(sequence)] = 0; }

    // Processes n tokens of a sequence at positions position()..position()+n-1 and returns the
    // logits of the last one ([vocab]); all_logits, when set, receives [n, vocab]. Throws when
    // the context would overflow.
    const float* feed(const std::int32_t* tokens, int n, std::vector<float>* all_logits = nullptr, int sequence = 0);
    // One token for each of n distinct sequences (each at its own next position), in one
    // product per weight: returns their logits [n, vocab]. n is at most max(max_chunk, sequences).
    const float* feed_batch(const std::int32_t* tokens, const int* sequences, int n);
    // Windows of L tokens from scratch, window w into sequence w, all in one product per weight
    // (evaluation): returns every position's logits [windows * L, vocab]. windows at most
    // sequences(), windows * L at most max_chunk.
    const float* feed_windows(const std::int32_t* tokens, int windows, int L);
    int max_chunk() const { return max_chunk_; }

private:
    Decoder(const InferenceWeights& weights, Device& device, int context, int max_chunk, int sequences, bool keep_copy,
            KvCache kv);
    // Rows t < n: token tokens[t] of sequence seq[t] at position pos[t]; logits of every row
    // (all_rows) or of the last one only. windows > 0: the rows are that many whole windows from
    // position 0, whose attention runs as the device's batched causal attention.
    void feed_rows(const std::int32_t* tokens, const int* seq, const int* pos, int n, bool all_rows, int windows = 0);
    void product(Projection p, const float* X, const QuantMatrix& W, int n, float* Y, float alpha = 1.0f,
                 float beta = 0.0f);
    InferenceWeights view_;  // when made from float32 Weights
    const InferenceWeights& w_;
    const Weights& base_;    // norms, biases
    bool all_f32_;
    Device& dev_;
    int context_, max_chunk_;
    std::vector<int> pos_;                   // per sequence
    KvCache kv_;
    std::vector<Tensor> k_cache_, v_cache_;  // f32: per sequence and layer [context, kv_dim]
    // f16: per sequence and layer [kv_heads, context, head_dim], so that one head's keys (and
    // values) are one run that attend_one_f16 streams through.
    std::vector<std::vector<std::uint16_t>> k16_, v16_;
    std::vector<int> row_seq_, row_pos_;
    Tensor rope_cos_, rope_sin_;
    Tensor x_, a_, q_, k_, v_, o_, f_, h1_, h3_, g_, rstd_, logits_;
    Tensor rstd_heads_;  // QK-norm only
    Tensor probs_;       // feed_windows: [windows, heads, L, L]
};

}  // namespace ane
