#include "ane/config.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "ane/error.hpp"
#include "ane/json_fields.hpp"
#include "ane/file_io.hpp"

namespace ane {

std::int64_t ModelConfig::layer_params() const {
    const std::int64_t d = dim, h = hidden, q = q_dim(), kv = kv_dim();
    return q * d + 2 * kv * d + d * q + 3 * h * d + 2 * d;
}

std::int64_t ModelConfig::layer_extra_params() const {
    return (attention_bias ? q_dim() + 2 * kv_dim() : 0) + (qk_norm ? 2 * std::int64_t(head_dim) : 0);
}

std::int64_t ModelConfig::params() const {
    std::int64_t n = layers * (layer_params() + layer_extra_params()) + dim + std::int64_t(vocab) * dim;
    if (!tied) n += std::int64_t(vocab) * dim;
    return n;
}

void ModelConfig::validate(const std::string& where) const {
    auto positive = [&](int v, const char* field, int max) {
        require(v >= 1 && v <= max, where, ": ", field, " = ", v, " is out of range [1, ", max, "]");
    };
    positive(dim, "dim", 1 << 16);
    positive(hidden, "hidden", 1 << 18);
    positive(heads, "heads", 1024);
    positive(kv_heads, "kv_heads", 1024);
    positive(head_dim, "head_dim", 4096);
    positive(seq, "seq", 1 << 20);
    positive(layers, "layers", 1024);
    positive(vocab, "vocab", 1 << 22);
    require(heads % kv_heads == 0, where, ": heads (", heads, ") must be a multiple of kv_heads (", kv_heads,
            ")");
    require(head_dim % 2 == 0, where, ": head_dim (", head_dim, ") must be even for RoPE");
    require(std::isfinite(rope_theta) && rope_theta > 0, where, ": rope_theta must be positive");
    require(std::isfinite(norm_eps) && norm_eps > 0 && norm_eps < 1, where, ": norm_eps must be in (0, 1)");
    if (rope_llama3.factor != 0) {
        const auto& r = rope_llama3;
        require(std::isfinite(r.factor) && r.factor >= 1 && r.factor <= 1024, where,
                ": rope scaling factor must be in [1, 1024]");
        require(std::isfinite(r.low_freq_factor) && std::isfinite(r.high_freq_factor) && r.low_freq_factor > 0 &&
                    r.high_freq_factor > r.low_freq_factor,
                where, ": rope scaling needs 0 < low_freq_factor < high_freq_factor");
        require(r.original_context > 0, where, ": rope scaling's original context must be positive");
    }
    require(std::isfinite(residual_scale) && residual_scale > 0, where, ": residual_scale must be positive");
}

std::vector<double> ModelConfig::rope_divisors() const {
    if (rope_llama3.factor == 0) return {};
    const auto& r = rope_llama3;
    const double pi = 3.14159265358979323846;
    const double low_wavelen = r.original_context / r.low_freq_factor, high_wavelen = r.original_context / r.high_freq_factor;
    std::vector<double> d(std::size_t(head_dim / 2));
    for (int i = 0; i < head_dim / 2; ++i) {
        const double freq = std::pow(rope_theta, -2.0 * i / head_dim), wavelen = 2 * pi / freq;
        if (wavelen < high_wavelen) {
            d[std::size_t(i)] = 1;
        } else if (wavelen > low_wavelen) {
            d[std::size_t(i)] = r.factor;
        } else {
            const double smooth = (r.original_context / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
            d[std::size_t(i)] = 1.0 / ((1 - smooth) / r.factor + smooth);
        }
    }
    return d;
}

bool ModelConfig::same_shape(const ModelConfig& o) const {
    return dim == o.dim && hidden == o.hidden && heads == o.heads && kv_heads == o.kv_heads &&
           head_dim == o.head_dim && layers == o.layers && vocab == o.vocab && tied == o.tied &&
           attention_bias == o.attention_bias && qk_norm == o.qk_norm;
}

std::string model_family(const ModelConfig& c, const std::string& where) {
    require(!(c.attention_bias && c.qk_norm), where,
            ": a model with both q/k/v biases and QK-norm is of no family Hugging Face or llama.cpp has "
            "(Qwen3's biases include o_proj)");
    return c.qk_norm ? "qwen3" : c.attention_bias ? "qwen2" : "llama";
}

double deepnet_residual_scale(int layers) { return 1.0 / std::sqrt(2.0 * layers); }

namespace {

struct PresetRow {
    const char* name;
    int dim, hidden, heads, kv_heads, head_dim, seq, layers, vocab;
    double rope_theta;
};

// Shapes from spec/checkpoint.md §4 (AutoANE's model headers); stories15m is llama2.c's
// 15M TinyStories model; golf is the parameter-golf baseline shape with a SwiGLU FFN.
constexpr PresetRow kPresets[] = {
    {"stories15m", 288, 768, 6, 6, 48, 256, 6, 32000, 1e4},
    {"stories110m", 768, 2048, 12, 12, 64, 256, 12, 32000, 1e4},
    {"autoresearch", 512, 1408, 8, 2, 64, 128, 4, 49152, 1e4},
    {"smollm2_135m", 576, 1536, 9, 3, 64, 256, 30, 49152, 1e5},
    {"smollm2_360m", 960, 2560, 15, 5, 64, 256, 32, 49152, 1e5},
    {"qwen3_06b", 1024, 3072, 16, 8, 128, 256, 28, 151936, 1e6},
    {"golf", 512, 1024, 8, 4, 64, 1024, 9, 1024, 1e4},
};

}  // namespace

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const auto& p : kPresets) names.emplace_back(p.name);
    return names;
}

ModelConfig preset(const std::string& name) {
    for (const auto& p : kPresets) {
        if (name != p.name) continue;
        ModelConfig c;
        c.name = p.name;
        c.dim = p.dim;
        c.hidden = p.hidden;
        c.heads = p.heads;
        c.kv_heads = p.kv_heads;
        c.head_dim = p.head_dim;
        c.seq = p.seq;
        c.layers = p.layers;
        c.vocab = p.vocab;
        c.rope_theta = p.rope_theta;
        c.residual_scale = deepnet_residual_scale(p.layers);
        return c;
    }
    std::string known;
    for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    throw error("unknown preset '", name, "' (known: ", known, ")");
}

void to_json(nlohmann::json& j, const ModelConfig& c) {
    j = nlohmann::json{{"name", c.name},
                       {"dim", c.dim},
                       {"hidden", c.hidden},
                       {"heads", c.heads},
                       {"kv_heads", c.kv_heads},
                       {"head_dim", c.head_dim},
                       {"seq", c.seq},
                       {"layers", c.layers},
                       {"vocab", c.vocab},
                       {"rope_theta", c.rope_theta},
                       {"norm_eps", c.norm_eps},
                       {"tied", c.tied},
                       {"residual_scale", c.residual_scale}};
    if (c.attention_bias) j["attention_bias"] = true;
    if (c.qk_norm) j["qk_norm"] = true;
    if (c.rope_llama3.factor != 0)
        j["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", c.rope_llama3.factor},
                             {"low_freq_factor", c.rope_llama3.low_freq_factor},
                             {"high_freq_factor", c.rope_llama3.high_freq_factor},
                             {"original_max_position_embeddings", c.rope_llama3.original_context}};
}

ModelConfig::Llama3Rope llama3_rope_from_json(const nlohmann::json& r, const std::string& where) {
    if (r.is_null()) return {};
    require(r.is_object(), where, ": rope_scaling must be an object");
    const std::string type = r.contains("rope_type") ? json_string(r["rope_type"], where, "rope_scaling.rope_type")
                             : r.contains("type")    ? json_string(r["type"], where, "rope_scaling.type")
                                                     : "?";
    if (type == "default") return {};
    require(type == "llama3", where, ": rope_scaling of type '", type, "' is not supported (llama3 is)");
    ModelConfig::Llama3Rope l;
    require(r.contains("factor"), where, ": rope_scaling of type llama3 has no factor");
    l.factor = json_number(r["factor"], where, "rope_scaling.factor");
    if (r.contains("low_freq_factor")) l.low_freq_factor = json_number(r["low_freq_factor"], where, "rope_scaling.low_freq_factor");
    if (r.contains("high_freq_factor"))
        l.high_freq_factor = json_number(r["high_freq_factor"], where, "rope_scaling.high_freq_factor");
    if (r.contains("original_max_position_embeddings"))
        l.original_context = json_int(r["original_max_position_embeddings"], where,
                                      "rope_scaling.original_max_position_embeddings", 1, INT32_MAX);
    return l;
}

ModelConfig::Llama3Rope llama3_rope_from_divisors(const ModelConfig& c, const std::vector<double>& divisors,
                                                  int original_context, const std::string& where) {
    require(divisors.size() == std::size_t(c.head_dim / 2), where, ": rope_freqs has ", divisors.size(),
            " values, head_dim ", c.head_dim, " needs ", c.head_dim / 2);
    double factor = 1;
    for (double d : divisors) {
        require(std::isfinite(d) && d >= 1 - 1e-6, where, ": rope_freqs holds ", d,
                "; Llama 3 rope scaling only divides frequencies by 1 or more");
        factor = std::max(factor, d);
    }
    ModelConfig::Llama3Rope r;
    r.factor = factor;
    r.original_context = original_context;
    if (factor > 1 + 1e-6) {
        // Between the band edges smooth = (1/d - 1/factor) / (1 - 1/factor) = A / wavelen - B, with
        // A = original / (high - low) and B = low / (high - low): two blended points give both.
        const double pi = 3.14159265358979323846;
        std::vector<std::pair<double, double>> blended;  // (1 / wavelen, smooth)
        for (std::size_t i = 0; i < divisors.size(); ++i) {
            const double d = divisors[i];
            if (d > 1 + 1e-4 && d < factor * (1 - 1e-4)) {
                const double inv_wavelen = std::pow(c.rope_theta, -2.0 * double(i) / c.head_dim) / (2 * pi);
                blended.emplace_back(inv_wavelen, (1 / d - 1 / factor) / (1 - 1 / factor));
            }
        }
        if (blended.size() >= 2) {
            const auto [x0, y0] = blended.front();
            const auto [x1, y1] = blended.back();
            const double A = (y1 - y0) / (x1 - x0), B = A * x0 - y0;
            if (std::isfinite(A) && A > 0 && std::isfinite(B) && B > 0) {
                r.low_freq_factor = B * original_context / A;
                r.high_freq_factor = r.low_freq_factor + original_context / A;
            }
        }
    } else {
        r.factor = 0;  // every frequency divided by 1: no scaling
    }
    ModelConfig check = c;
    check.rope_llama3 = r;
    const std::vector<double> got = check.rope_divisors();
    for (std::size_t i = 0; i < got.size(); ++i)
        require(std::abs(got[i] - divisors[i]) <= 1e-3 * divisors[i], where, ": rope_freqs value ", i, " (",
                divisors[i], ") is not what Llama 3 rope scaling gives (", got[i], " with factor ", r.factor,
                ", low ", r.low_freq_factor, ", high ", r.high_freq_factor, ", original context ", original_context, ")");
    return r;
}

void from_json(const nlohmann::json& j, ModelConfig& c) {
    if (!j.is_object()) throw error("model config must be a JSON object");
    static const std::set<std::string> known = {"name",   "dim",        "hidden",   "heads", "kv_heads",
                                                "head_dim", "seq",      "layers",   "vocab", "rope_theta",
                                                "norm_eps", "tied",     "residual_scale", "rope_scaling",
                                                "attention_bias", "qk_norm"};
    for (const auto& [key, value] : j.items())
        if (!known.count(key)) throw error("model config: unknown field '", key, "'");
    auto get_int = [&](const char* key, int& out, bool required) {
        if (!j.contains(key)) {
            if (required) throw error("model config: missing field '", key, "'");
            return;
        }
        out = json_int(j.at(key), "model config", std::string("field '") + key + "'", INT32_MIN, INT32_MAX);
    };
    auto get_double = [&](const char* key, double& out) {
        if (!j.contains(key)) return;
        out = json_number(j.at(key), "model config", std::string("field '") + key + "'");
    };
    c = ModelConfig{};
    if (j.contains("name")) {
        if (!j.at("name").is_string()) throw error("model config: field 'name' must be a string");
        c.name = j.at("name").get<std::string>();
    }
    get_int("dim", c.dim, true);
    get_int("hidden", c.hidden, true);
    get_int("heads", c.heads, true);
    c.kv_heads = c.heads;
    get_int("kv_heads", c.kv_heads, false);
    c.head_dim = c.heads > 0 ? c.dim / c.heads : 0;
    get_int("head_dim", c.head_dim, false);
    get_int("seq", c.seq, true);
    get_int("layers", c.layers, true);
    get_int("vocab", c.vocab, true);
    get_double("rope_theta", c.rope_theta);
    if (j.contains("rope_scaling")) c.rope_llama3 = llama3_rope_from_json(j.at("rope_scaling"), "model config");
    get_double("norm_eps", c.norm_eps);
    auto get_bool = [&](const char* key, bool& out) {
        if (!j.contains(key)) return;
        if (!j.at(key).is_boolean()) throw error("model config: field '", key, "' must be true or false");
        out = j.at(key).get<bool>();
    };
    get_bool("tied", c.tied);
    get_bool("attention_bias", c.attention_bias);
    get_bool("qk_norm", c.qk_norm);
    c.residual_scale = c.layers > 0 ? deepnet_residual_scale(c.layers) : 1.0;
    get_double("residual_scale", c.residual_scale);
}

ModelConfig load_config_json(const std::string& path) {
    std::string text = read_text_file(path);
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) throw error(path, ": not valid JSON");
    ModelConfig c;
    try {
        c = j.get<ModelConfig>();
    } catch (const Error& e) {
        throw error(path, ": ", e.what());
    }
    c.validate(path);
    return c;
}

void save_config_json(const ModelConfig& c, const std::string& path) {
    std::string text = nlohmann::json(c).dump(2) + "\n";
    AtomicWriter w(path);
    w.write(text.data(), text.size());
    w.commit();
}

}  // namespace ane
