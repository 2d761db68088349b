#pragma once
// Low-rank adapters (spec/mezo.md §4): for an adapted W [out, in], A [rank, in] and
// B [out, rank] with W_eff = W + B·A (scaling 1). Used split (the correction added in the
// forward pass, base untouched) or merged into the weights.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ane/weights.hpp"

namespace ane {

// The projections an adapter can sit on, in a fixed order (its index is the adapter's slot).
enum LoraTarget { kWq, kWk, kWv, kWo, kW1, kW2, kW3, kLoraTargetCount };
const std::array<std::string, kLoraTargetCount>& lora_target_names();  // "wq" ... "w3"

// "attn" (wq,wk,wv,wo; the default), "ffn" (w1,w2,w3), "all", or a comma list of names and groups.
std::array<bool, kLoraTargetCount> parse_lora_targets(const std::string& spec);
// The message of parse_lora_targets' error, or empty when `spec` is valid (a CLI check).
std::string lora_targets_problem(const std::string& spec);
std::string lora_targets_string(const std::array<bool, kLoraTargetCount>& targets);

struct LoraAdapter {
    Tensor a, b;  // [rank, in], [out, rank]; empty when the slot is not adapted
    bool active() const { return !a.empty(); }
};

struct Lora {
    int rank = 0;
    std::array<bool, kLoraTargetCount> targets{};
    std::vector<std::array<LoraAdapter, kLoraTargetCount>> layers;

    // A and B zero-filled.
    static Lora zeros(const ModelConfig& c, int rank, const std::array<bool, kLoraTargetCount>& targets);
    // train_mezo's init: drand48 seeded seed + 12345; per layer Aq, Ak, Av, Ao, then A1, A3, A2,
    // each element (2·drand48() − 1)/sqrt(rank); every B zero, so the model starts unchanged.
    static Lora init(const ModelConfig& c, int rank, const std::array<bool, kLoraTargetCount>& targets, long seed);

    const LoraAdapter& at(int layer, LoraTarget t) const { return layers[std::size_t(layer)][t]; }
    LoraAdapter& at(int layer, LoraTarget t) { return layers[std::size_t(layer)][t]; }
    // Visits every A and B as "layers.3.wq.lora_a", per layer in the order
    // Aq Bq Ak Bk Av Bv Ao Bo A1 B1 A2 B2 A3 B3 (train_mezo's perturbation order).
    void for_each(const std::function<void(const std::string&, Tensor&)>& fn);
    void for_each(const std::function<void(const std::string&, const Tensor&)>& fn) const;
    Tensor* find(const std::string& name);
    std::int64_t params() const;
    bool bit_equal(const Lora& other) const;
};

// [out, in] of an adapted projection.
std::pair<int, int> lora_target_shape(const ModelConfig& c, LoraTarget t);
Tensor& target_weight(LayerWeights& w, LoraTarget t);
const Tensor& target_weight(const LayerWeights& w, LoraTarget t);

// out[out, in] = base + B·A (out may be base itself).
void merge_adapter(const Tensor& base, const LoraAdapter& adapter, Tensor& out);
// Folds every adapter into the weights in place: W += B·A.
void merge_lora(Weights& weights, const Lora& lora);

// Keeps copies of the adapted base matrices so that merged weights can be rebuilt after every
// change of the adapters (train_mezo's --lora merge mode).
class LoraMerger {
public:
    LoraMerger(const Weights& weights, const Lora& lora);
    void apply(Weights& weights, const Lora& lora) const;
    // Exchanges the adapted matrices with the kept base copies (to save the unmerged model).
    void swap_base(Weights& weights);
    const Tensor& base(int layer, LoraTarget t) const { return base_[std::size_t(layer)][t]; }

private:
    std::vector<std::array<Tensor, kLoraTargetCount>> base_;
};

}  // namespace ane
