#include "ane/mezo/lora.hpp"

#include "ane/cblas.hpp"

#include <cmath>
#include <sstream>

#include "ane/error.hpp"
#include "ane/sampling.hpp"

namespace ane {

const std::array<std::string, kLoraTargetCount>& lora_target_names() {
    static const std::array<std::string, kLoraTargetCount> names = {"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
    return names;
}

std::string lora_targets_problem(const std::string& spec) {
    try {
        parse_lora_targets(spec);
    } catch (const Error& e) {
        return e.what();
    }
    return {};
}

std::array<bool, kLoraTargetCount> parse_lora_targets(const std::string& spec) {
    std::array<bool, kLoraTargetCount> on{};
    std::stringstream in(spec);
    std::string item;
    bool any = false;
    while (std::getline(in, item, ',')) {
        if (item.empty()) continue;
        any = true;
        if (item == "attn" || item == "all")
            for (int t : {kWq, kWk, kWv, kWo}) on[t] = true;
        if (item == "ffn" || item == "all")
            for (int t : {kW1, kW2, kW3}) on[t] = true;
        if (item == "attn" || item == "ffn" || item == "all") continue;
        bool found = false;
        for (int t = 0; t < kLoraTargetCount; ++t)
            if (item == lora_target_names()[t] || item == lora_target_names()[t].substr(1)) on[t] = found = true;
        require(found, "unknown LoRA target '", item, "' (attn, ffn, all, or wq, wk, wv, wo, w1, w2, w3)");
    }
    require(any, "no LoRA targets given");
    return on;
}

std::string lora_targets_string(const std::array<bool, kLoraTargetCount>& targets) {
    std::string s;
    for (int t = 0; t < kLoraTargetCount; ++t)
        if (targets[t]) s += (s.empty() ? "" : ",") + lora_target_names()[t];
    return s;
}

std::pair<int, int> lora_target_shape(const ModelConfig& c, LoraTarget t) {
    switch (t) {
        case kWq: return {c.q_dim(), c.dim};
        case kWk:
        case kWv: return {c.kv_dim(), c.dim};
        case kWo: return {c.dim, c.q_dim()};
        case kW1:
        case kW3: return {c.hidden, c.dim};
        case kW2: return {c.dim, c.hidden};
        default: break;
    }
    throw error("bad LoRA target ", int(t));
}

Tensor& target_weight(LayerWeights& w, LoraTarget t) {
    Tensor* slots[kLoraTargetCount] = {&w.wq, &w.wk, &w.wv, &w.wo, &w.w1, &w.w2, &w.w3};
    return *slots[t];
}
const Tensor& target_weight(const LayerWeights& w, LoraTarget t) {
    return target_weight(const_cast<LayerWeights&>(w), t);
}

Lora Lora::zeros(const ModelConfig& c, int rank, const std::array<bool, kLoraTargetCount>& targets) {
    require(rank >= 1, "LoRA rank must be at least 1, got ", rank);
    Lora lora;
    lora.rank = rank;
    lora.targets = targets;
    lora.layers.resize(std::size_t(c.layers));
    for (auto& layer : lora.layers)
        for (int t = 0; t < kLoraTargetCount; ++t) {
            if (!targets[t]) continue;
            const auto [out, in] = lora_target_shape(c, LoraTarget(t));
            require(rank <= std::min(out, in), "LoRA rank ", rank, " exceeds the ", lora_target_names()[t],
                    " projection's smaller side (", std::min(out, in), ")");
            layer[t].a = Tensor({rank, in});
            layer[t].b = Tensor({out, rank});
        }
    return lora;
}

Lora Lora::init(const ModelConfig& c, int rank, const std::array<bool, kLoraTargetCount>& targets, long seed) {
    Lora lora = zeros(c, rank, targets);
    Drand48 rng(seed + 12345);
    const float scale = 1.0f / std::sqrt(float(rank));
    for (auto& layer : lora.layers)
        for (LoraTarget t : {kWq, kWk, kWv, kWo, kW1, kW3, kW2}) {
            if (!layer[t].active()) continue;
            float* a = layer[t].a.data();
            for (std::int64_t i = 0; i < layer[t].a.numel(); ++i) a[i] = scale * float(2.0 * rng.next() - 1.0);
        }
    return lora;
}

void Lora::for_each(const std::function<void(const std::string&, Tensor&)>& fn) {
    for (std::size_t l = 0; l < layers.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t) {
            if (!layers[l][t].active()) continue;
            const std::string base = "layers." + std::to_string(l) + "." + lora_target_names()[t];
            fn(base + ".lora_a", layers[l][t].a);
            fn(base + ".lora_b", layers[l][t].b);
        }
}

void Lora::for_each(const std::function<void(const std::string&, const Tensor&)>& fn) const {
    const_cast<Lora*>(this)->for_each([&](const std::string& n, Tensor& t) { fn(n, t); });
}

Tensor* Lora::find(const std::string& name) {
    Tensor* found = nullptr;
    for_each([&](const std::string& n, Tensor& t) {
        if (n == name) found = &t;
    });
    return found;
}

std::int64_t Lora::params() const {
    std::int64_t n = 0;
    for_each([&](const std::string&, const Tensor& t) { n += t.numel(); });
    return n;
}

bool Lora::bit_equal(const Lora& other) const {
    if (rank != other.rank || targets != other.targets || layers.size() != other.layers.size()) return false;
    bool same = true;
    for (std::size_t l = 0; l < layers.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t)
            if (layers[l][t].active())
                same = same && layers[l][t].a.bit_equal(other.layers[l][t].a) &&
                       layers[l][t].b.bit_equal(other.layers[l][t].b);
    return same;
}

void merge_adapter(const Tensor& base, const LoraAdapter& adapter, Tensor& out) {
    const int n_out = int(adapter.b.rows()), rank = int(adapter.a.rows()), n_in = int(adapter.a.cols());
    require(base.shape() == Shape{n_out, n_in}, "LoRA adapter ", n_out, "x", n_in, " does not fit a weight of ",
            shape_string(base.shape()));
    if (&out != &base) out = base;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_out, n_in, rank, 1.0f, adapter.b.data(), rank,
                adapter.a.data(), n_in, 1.0f, out.data(), n_in);
}

void merge_lora(Weights& weights, const Lora& lora) {
    require(lora.layers.size() == weights.layers.size(), "LoRA adapters have ", lora.layers.size(),
            " layers, the model ", weights.layers.size());
    for (std::size_t l = 0; l < lora.layers.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t)
            if (lora.layers[l][t].active()) {
                Tensor& w = target_weight(weights.layers[l], LoraTarget(t));
                merge_adapter(w, lora.layers[l][t], w);
            }
}

LoraMerger::LoraMerger(const Weights& weights, const Lora& lora) {
    base_.resize(lora.layers.size());
    for (std::size_t l = 0; l < lora.layers.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t)
            if (lora.layers[l][t].active()) base_[l][t] = target_weight(weights.layers[l], LoraTarget(t));
}

void LoraMerger::apply(Weights& weights, const Lora& lora) const {
    for (std::size_t l = 0; l < lora.layers.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t)
            if (lora.layers[l][t].active())
                merge_adapter(base_[l][t], lora.layers[l][t], target_weight(weights.layers[l], LoraTarget(t)));
}

void LoraMerger::swap_base(Weights& weights) {
    for (std::size_t l = 0; l < base_.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t)
            if (!base_[l][t].empty()) std::swap(base_[l][t], target_weight(weights.layers[l], LoraTarget(t)));
}

}  // namespace ane
