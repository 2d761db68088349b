#pragma once
// The model's hyper-parameters: shapes, RoPE base, norm epsilon, tying and the residual
// (DeepNet) scale. Named presets and JSON in and out.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ane {

struct ModelConfig {
    std::string name;       // free text, e.g. the preset or the source model
    int dim = 0;            // model width
    int hidden = 0;         // SwiGLU inner width
    int heads = 0;          // query heads
    int kv_heads = 0;       // key/value heads (grouped-query attention)
    int head_dim = 0;       // independent of dim / heads (Qwen3 uses 128 with dim 1024)
    int seq = 0;            // training / context length
    int layers = 0;
    int vocab = 0;          // full vocabulary: rows of the embedding
    double rope_theta = 10000.0;
    // Llama 3's rope scaling (Hugging Face rope_scaling {"rope_type": "llama3", ...});
    // factor 0: none. Low frequencies are divided by `factor`, high ones kept, those between
    // blended (spec: transformers' _compute_llama3_parameters).
    struct Llama3Rope {
        double factor = 0, low_freq_factor = 1, high_freq_factor = 4;
        int original_context = 8192;
        bool operator==(const Llama3Rope&) const = default;
    } rope_llama3;
    double norm_eps = 1e-5;
    bool tied = true;       // classifier shares the embedding
    bool attention_bias = false;  // q, k and v projections add a bias (Qwen2)
    bool qk_norm = false;         // RMSNorm over head_dim on q and k before RoPE (Qwen3)
    double residual_scale = 1.0;  // α multiplying both residual branches

    int q_dim() const { return heads * head_dim; }
    // What each of the head_dim / 2 rotary frequencies θ^(-2i/head_dim) is divided by; empty
    // when the model has no rope scaling.
    std::vector<double> rope_divisors() const;
    int kv_dim() const { return kv_heads * head_dim; }
    // The nine tensors every layer has (the BLZT body's), and the family extras beside them.
    std::int64_t layer_params() const;
    std::int64_t layer_extra_params() const;
    // Every trainable float: layers, rms_final, embedding and the untied classifier.
    std::int64_t params() const;

    // Throws an Error starting with `where` when a field is out of range or inconsistent.
    void validate(const std::string& where) const;

    bool same_shape(const ModelConfig& other) const;
};

// The family a config's extras make it, as Hugging Face's model_type and GGUF's architecture
// name it: "qwen3" (QK-norm), "qwen2" (q/k/v biases) or "llama". Biases and QK-norm together
// are no family's: an Error starting with `where`.
std::string model_family(const ModelConfig& c, const std::string& where);

// DeepNet's 1/sqrt(2L): the residual scale for models trained from scratch.
double deepnet_residual_scale(int layers);

std::vector<std::string> preset_names();
// Throws an Error listing the known names when name is not one of them.
ModelConfig preset(const std::string& name);

void to_json(nlohmann::json& j, const ModelConfig& c);
// Hugging Face's rope_scaling object (null or "default": none; "llama3"; other types refused).
ModelConfig::Llama3Rope llama3_rope_from_json(const nlohmann::json& rope_scaling, const std::string& where);
// The Llama 3 rope scaling whose rope_divisors() are `divisors` (what llama.cpp's rope_freqs
// tensor holds) for c's θ and head_dim, given the original context: factor = the largest
// divisor, the two band edges solved from the blended ones (1 and 4 when fewer than two are
// blended). Throws naming `where` when no such scaling gives these divisors.
ModelConfig::Llama3Rope llama3_rope_from_divisors(const ModelConfig& c, const std::vector<double>& divisors,
                                                  int original_context, const std::string& where);
// Missing optional fields (rope_theta, norm_eps, tied, residual_scale, head_dim, kv_heads)
// take their usual defaults; unknown keys are errors so that typos are caught.
void from_json(const nlohmann::json& j, ModelConfig& c);

ModelConfig load_config_json(const std::string& path);
void save_config_json(const ModelConfig& c, const std::string& path);

}  // namespace ane
