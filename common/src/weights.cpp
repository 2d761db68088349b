#include "ane/weights.hpp"

#include <cstring>

#include "ane/distributed.hpp"
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
    if (name == "bq") return {q};
    if (name == "bk" || name == "bv") return {kv};
    if (name == "q_norm" || name == "k_norm") return {c.head_dim};
    throw error("unknown layer tensor '", name, "'");
}

std::vector<std::string> layer_extra_tensor_names(const ModelConfig& c) {
    std::vector<std::string> names;
    if (c.attention_bias) names.insert(names.end(), {"bq", "bk", "bv"});
    if (c.qk_norm) names.insert(names.end(), {"q_norm", "k_norm"});
    return names;
}

Tensor& LayerWeights::get(const std::string& name) {
    if (name == "wq") return wq;
    if (name == "wk") return wk;
    if (name == "wv") return wv;
    if (name == "wo") return wo;
    if (name == "w1") return w1;
    if (name == "w2") return w2;
    if (name == "w3") return w3;
    if (name == "rms_att") return rms_att;
    if (name == "rms_ffn") return rms_ffn;
    if (name == "bq") return bq;
    if (name == "bk") return bk;
    if (name == "bv") return bv;
    if (name == "q_norm") return q_norm;
    if (name == "k_norm") return k_norm;
    throw error("unknown layer tensor '", name, "'");
}

namespace {
std::string short_name(const std::string& name) { return name.substr(name.rfind('.') + 1); }
}  // namespace

bool is_norm_gain(const std::string& name) {
    const std::string s = short_name(name);
    return s.rfind("rms_", 0) == 0 || s == "q_norm" || s == "k_norm";
}

bool is_bias(const std::string& name) {
    const std::string s = short_name(name);
    return s == "bq" || s == "bk" || s == "bv";
}

Weights Weights::zeros(const ModelConfig& config) {
    Weights w;
    w.config = config;
    w.layers.resize(config.layers);
    for (auto& layer : w.layers) {
        for (const auto& name : layer_tensor_names()) layer.get(name) = Tensor(layer_tensor_shape(config, name));
        for (const auto& name : layer_extra_tensor_names(config)) layer.get(name) = Tensor(layer_tensor_shape(config, name));
    }
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
        if (config.qk_norm) {
            layer.q_norm = Tensor({config.head_dim});
            layer.k_norm = Tensor({config.head_dim});
        }
    }
    w.rms_final = Tensor({config.dim});
    return w;
}

void Weights::for_each(const std::function<void(const std::string&, Tensor&)>& fn) {
    for (std::size_t l = 0; l < layers.size(); ++l)
        for (const auto& name : layer_tensor_names()) fn("layers." + std::to_string(l) + "." + name, layers[l].get(name));
    fn("rms_final", rms_final);
    fn("embed", embed);
    if (!classifier.empty()) fn("classifier", classifier);
    const auto extras = layer_extra_tensor_names(config);
    for (std::size_t l = 0; l < layers.size(); ++l)
        for (const auto& name : extras) fn("layers." + std::to_string(l) + "." + name, layers[l].get(name));
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

std::uint64_t Weights::fingerprint(std::uint64_t seed) const {
    for_each([&](const std::string&, const Tensor& t) { seed = dist::fingerprint(t.data(), t.bytes(), seed); });
    return seed;
}

namespace {
void permute_rope_rows(Tensor& w, int n_heads, int head_dim, bool to_interleaved) {
    // A vector (a bias, a per-head norm gain) permutes as a matrix of one column.
    require(!w.shape().empty() && w.shape().size() <= 2 && w.shape()[0] == std::int64_t(n_heads) * head_dim,
            "RoPE row permutation: tensor ", shape_string(w.shape()), " does not have ", n_heads, " x ",
            head_dim, " rows");
    const std::int64_t cols = w.shape().size() == 2 ? w.shape()[1] : 1;
    permute_rope_row_bytes(reinterpret_cast<std::uint8_t*>(w.data()), static_cast<std::size_t>(cols) * sizeof(float),
                           n_heads, head_dim, to_interleaved);
}
}  // namespace

void permute_rope_row_bytes(std::uint8_t* rows, std::size_t row_bytes, int n_heads, int head_dim, bool to_interleaved) {
    require(head_dim % 2 == 0, "RoPE row permutation: head_dim ", head_dim, " is odd");
    std::vector<std::uint8_t> head(static_cast<std::size_t>(head_dim) * row_bytes);
    const int half = head_dim / 2;
    for (int h = 0; h < n_heads; ++h) {
        std::uint8_t* base = rows + std::size_t(h) * head_dim * row_bytes;
        std::memcpy(head.data(), base, head.size());
        for (int i = 0; i < half; ++i) {
            // halves row i pairs with row i + half; interleaved rows 2i and 2i+1.
            const int src_a = to_interleaved ? i : 2 * i, dst_a = to_interleaved ? 2 * i : i;
            const int src_b = to_interleaved ? i + half : 2 * i + 1, dst_b = to_interleaved ? 2 * i + 1 : i + half;
            std::memcpy(base + dst_a * row_bytes, head.data() + src_a * row_bytes, row_bytes);
            std::memcpy(base + dst_b * row_bytes, head.data() + src_b * row_bytes, row_bytes);
        }
    }
}

void rope_rows_halves_to_interleaved(Tensor& w, int n_heads, int head_dim) {
    permute_rope_rows(w, n_heads, head_dim, true);
}

void rope_rows_interleaved_to_halves(Tensor& w, int n_heads, int head_dim) {
    permute_rope_rows(w, n_heads, head_dim, false);
}

int rope_row_heads(const ModelConfig& c, const std::string& name) {
    if (name == "wq" || name == "bq") return c.heads;
    if (name == "wk" || name == "bk") return c.kv_heads;
    if (name == "q_norm" || name == "k_norm") return 1;
    return 0;
}

void layer_rows_halves_to_interleaved(LayerWeights& layer, const ModelConfig& c) {
    for (const char* name : {"wq", "wk", "bq", "bk", "q_norm", "k_norm"})
        if (Tensor& t = layer.get(name); !t.empty()) rope_rows_halves_to_interleaved(t, rope_row_heads(c, name), c.head_dim);
}

void require_plausible_size(const ModelConfig& c, std::uint64_t file_bytes, double min_bytes_per_param,
                            const std::string& where) {
    const double needed = double(c.params()) * min_bytes_per_param;
    require(needed <= double(file_bytes), where, ": the dimensions describe ", c.params(), " parameters (",
            std::int64_t(double(c.params()) * 4 / 1e6), " MB as float32), more than the ", file_bytes,
            " bytes of the file can hold");
}

}  // namespace ane
