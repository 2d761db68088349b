#pragma once
// The model's named tensors in the one canonical layout every format converts to and from:
// row-major float32 [out, in], Q/K rows in the interleaved RoPE pairing.
#include <functional>
#include <string>
#include <vector>

#include "ane/config.hpp"
#include "ane/tensor.hpp"

namespace ane {

struct LayerWeights {
    Tensor wq, wk, wv, wo, w1, w2, w3, rms_att, rms_ffn;
    // Family extras, empty unless the config asks: Qwen2's q/k/v biases [q_dim] / [kv_dim] and
    // Qwen3's per-head RMSNorm gains [head_dim] (both in the interleaved RoPE order, like Wq/Wk).
    Tensor bq, bk, bv, q_norm, k_norm;

    Tensor& get(const std::string& name);  // by short name ("wq", "q_norm"); throws on others
    const Tensor& get(const std::string& name) const { return const_cast<LayerWeights*>(this)->get(name); }
};

struct Weights {
    ModelConfig config;
    std::vector<LayerWeights> layers;
    Tensor rms_final;
    Tensor embed;       // [vocab, dim]
    Tensor classifier;  // [vocab, dim], empty when tied

    // All tensors zero-filled, shaped by config.
    static Weights zeros(const ModelConfig& config);
    // Only the RMSNorm gains zero-filled, every matrix empty: the gradients of a frozen base.
    static Weights norms_only(const ModelConfig& config);

    // Visits every tensor with its canonical name ("layers.3.wq", "embed", ...), in BLZT
    // order: per layer wq wk wv wo w1 w2 w3 rms_att rms_ffn, then rms_final, embed, classifier,
    // then per layer the extras the config has (bq bk bv q_norm k_norm).
    void for_each(const std::function<void(const std::string&, Tensor&)>& fn);
    void for_each(const std::function<void(const std::string&, const Tensor&)>& fn) const;

    Tensor* find(const std::string& name);
    bool bit_equal(const Weights& other) const;
    // A hash of every tensor's bytes in for_each order, continuing from `seed` (dist::fingerprint):
    // whether processes hold the same weights.
    std::uint64_t fingerprint(std::uint64_t seed) const;
};

// The nine per-layer tensor names in BLZT order, and the shapes of these and the extras.
const std::vector<std::string>& layer_tensor_names();
// The extras a config's layers have, in for_each order.
std::vector<std::string> layer_extra_tensor_names(const ModelConfig& c);
// RMSNorm gains (rms_att, rms_ffn, rms_final, q_norm, k_norm) and q/k/v biases, by canonical
// name: neither is weight-decayed; the gains are what LoRA trains beside its adapters.
bool is_norm_gain(const std::string& name);
bool is_bias(const std::string& name);
Shape layer_tensor_shape(const ModelConfig& c, const std::string& name);

// Q/K row order: HF (and GGUF converters that follow it) keeps RoPE pairs as split halves
// (i, i + hd/2); BLZT, llama2.c and llama.cpp's `llama` GGUFs interleave them (2i, 2i+1).
// rows = n_heads * head_dim, each row `cols` floats.
void rope_rows_halves_to_interleaved(Tensor& w, int n_heads, int head_dim);
void rope_rows_interleaved_to_halves(Tensor& w, int n_heads, int head_dim);
// The same on rows of any encoding, each row_bytes long (n_heads * head_dim rows).
void permute_rope_row_bytes(std::uint8_t* rows, std::size_t row_bytes, int n_heads, int head_dim, bool to_interleaved);
// The layer tensors whose rows follow that pairing (wq, wk, their biases, the QK-norm gains):
// how many heads their rows make (a QK-norm gain is one head's); 0 for every other tensor.
int rope_row_heads(const ModelConfig& c, const std::string& name);
// All of a layer's such tensors from split halves to the interleaved order.
void layer_rows_halves_to_interleaved(LayerWeights& layer, const ModelConfig& c);

// Throws, before anything is allocated, when a header's dimensions describe more parameters
// than files of `file_bytes` could hold at `min_bytes_per_param` (a header edited to ask for
// gigabytes); the message gives both numbers.
void require_plausible_size(const ModelConfig& c, std::uint64_t file_bytes, double min_bytes_per_param,
                            const std::string& where);

}  // namespace ane
