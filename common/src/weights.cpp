#include "ane/weights.hpp"

#include <cstring>

#include "ane/error.hpp"

namespace ane {

const std::vector<std::string>& layer_tensor_names() {
    static const std::vector<std::string> names = {"wq", "wk", "wv", "wo", "w1",
                                                   "w2", "w3", "rms_att", "rms_ffn"};
    return names;
}

Shape layer_tensor_shape(const ModelConfig& c, const std::string& name) {
    const std::int64_t d = c.dim, h = c.hidden, q = c.q_dim(), kv = c.kv_dim();
    if (name == "wq") return {q, d};
    if (name == "wk" || name == "wv") return {kv, d};
    if (name == "wo") return {d, q};
    if (name == "w1" || name == "w3") return {h, d};
    if (name == "w2") return {d, h};
    if (name == "rms_att" || name == "rms_ffn") return {d};
    throw error("unknown layer tensor '", name, "'");
}

namespace {
Tensor* layer_tensor(LayerWeights& l, int index) {
    Tensor* all[] = {&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w2, &l.w3, &l.rms_att, &l.rms_ffn};
    return all[index];
}
}  // namespace

Weights Weights::zeros(const ModelConfig& config) {
    Weights w;
    w.config = config;
    w.layers.resize(config.layers);
    const auto& names = layer_tensor_names();
    for (auto& layer : w.layers)
        for (int i = 0; i < int(names.size()); ++i) *layer_tensor(layer, i) = Tensor(layer_tensor_shape(config, names[i]));
    w.rms_final = Tensor({config.dim});
    w.embed = Tensor({config.vocab, config.dim});
    if (!config.tied) w.classifier = Tensor({config.vocab, config.dim});
    return w;
}

Weights Weights::norms_only(const ModelConfig& config) {
    Weights w;
    w.config = config;
    w.layers.resize(config.layers);
    for (auto& layer : w.layers) {
        layer.rms_att = Tensor({config.dim});
        layer.rms_ffn = Tensor({config.dim});
    }
    w.rms_final = Tensor({config.dim});
    return w;
}

void Weights::for_each(const std::function<void(const std::string&, Tensor&)>& fn) {
    const auto& names = layer_tensor_names();
    for (std::size_t l = 0; l < layers.size(); ++l)
        for (int i = 0; i < int(names.size()); ++i)
            fn("layers." + std::to_string(l) + "." + names[i], *layer_tensor(layers[l], i));
    fn("rms_final", rms_final);
    fn("embed", embed);
    if (!classifier.empty()) fn("classifier", classifier);
}

void Weights::for_each(const std::function<void(const std::string&, const Tensor&)>& fn) const {
    const_cast<Weights*>(this)->for_each([&](const std::string& name, Tensor& t) { fn(name, t); });
}

Tensor* Weights::find(const std::string& name) {
    Tensor* found = nullptr;
    for_each([&](const std::string& n, Tensor& t) {
        if (n == name) found = &t;
    });
    return found;
}

bool Weights::bit_equal(const Weights& other) const {
    if (!config.same_shape(other.config) || layers.size() != other.layers.size()) return false;
    bool equal = true;
    auto& o = const_cast<Weights&>(other);
    for_each([&](const std::string& name, const Tensor& t) {
        const Tensor* u = o.find(name);
        if (!u || !t.bit_equal(*u)) equal = false;
    });
    return equal;
}

namespace {
void permute_rope_rows(Tensor& w, int n_heads, int head_dim, bool to_interleaved) {
    require(w.shape().size() == 2 && w.rows() == std::int64_t(n_heads) * head_dim,
            "RoPE row permutation: tensor ", shape_string(w.shape()), " does not have ", n_heads, " x ",
            head_dim, " rows");
    require(head_dim % 2 == 0, "RoPE row permutation: head_dim ", head_dim, " is odd");
    const std::int64_t cols = w.cols();
    const std::size_t row_bytes = static_cast<std::size_t>(cols) * sizeof(float);
    std::vector<float> head(static_cast<std::size_t>(head_dim * cols));
    const int half = head_dim / 2;
    for (int h = 0; h < n_heads; ++h) {
        float* base = w.row(std::int64_t(h) * head_dim);
        std::memcpy(head.data(), base, head.size() * sizeof(float));
        for (int i = 0; i < half; ++i) {
            // halves row i pairs with row i + half; interleaved rows 2i and 2i+1.
            const int src_a = to_interleaved ? i : 2 * i, dst_a = to_interleaved ? 2 * i : i;
            const int src_b = to_interleaved ? i + half : 2 * i + 1, dst_b = to_interleaved ? 2 * i + 1 : i + half;
            std::memcpy(base + dst_a * cols, head.data() + src_a * cols, row_bytes);
            std::memcpy(base + dst_b * cols, head.data() + src_b * cols, row_bytes);
        }
    }
}
}  // namespace

void rope_rows_halves_to_interleaved(Tensor& w, int n_heads, int head_dim) {
    permute_rope_rows(w, n_heads, head_dim, true);
}

void rope_rows_interleaved_to_halves(Tensor& w, int n_heads, int head_dim) {
    permute_rope_rows(w, n_heads, head_dim, false);
}

void require_plausible_size(const ModelConfig& c, std::uint64_t file_bytes, double min_bytes_per_param,
                            const std::string& where) {
    const double needed = double(c.params()) * min_bytes_per_param;
    require(needed <= double(file_bytes), where, ": the dimensions describe ", c.params(), " parameters (",
            std::int64_t(double(c.params()) * 4 / 1e6), " MB as float32), more than the ", file_bytes,
            " bytes of the file can hold");
}

}  // namespace ane
