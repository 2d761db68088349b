// Qwen2 (q/k/v biases) and Qwen3 (QK-norm) checkpoints written by the test in Hugging Face's
// layout: imported they compute what the double-precision reference (rotate_half RoPE, HF
// tensors as stored) computes; exported to GGUF (qwen2/qwen3, NEOX order) and to HF they come
// back as the same model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/safetensors.hpp"
#include "reference_model.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

struct Family {
    const char* architecture;
    bool bias, qk_norm;
};
const Family kQwen2{"Qwen2ForCausalLM", true, false};
const Family kQwen3{"Qwen3ForCausalLM", false, true};

ModelConfig family_config(const Family& f, bool tied) {
    ModelConfig c = test::tiny_config(tied);
    c.residual_scale = 1.0;
    c.norm_eps = 1e-6;
    c.rope_theta = 1e6;
    c.attention_bias = f.bias;
    c.qk_norm = f.qk_norm;
    return c;
}

const std::pair<const char*, const char*> kHfLayerNames[] = {
    {"self_attn.q_proj.weight", "wq"},     {"self_attn.k_proj.weight", "wk"},
    {"self_attn.v_proj.weight", "wv"},     {"self_attn.o_proj.weight", "wo"},
    {"mlp.gate_proj.weight", "w1"},        {"mlp.down_proj.weight", "w2"},
    {"mlp.up_proj.weight", "w3"},          {"input_layernorm.weight", "rms_att"},
    {"post_attention_layernorm.weight", "rms_ffn"}, {"self_attn.q_proj.bias", "bq"},
    {"self_attn.k_proj.bias", "bk"},       {"self_attn.v_proj.bias", "bv"},
    {"self_attn.q_norm.weight", "q_norm"}, {"self_attn.k_norm.weight", "k_norm"}};

// Writes `hf` (HF layout: Q/K rows, biases and norm gains in split halves) as a HF folder.
void write_hf_folder(const Weights& hf, const Family& f, const std::string& folder, HfDtype dtype) {
    const ModelConfig& c = hf.config;
    std::vector<SafetensorEntry> list = {{"model.embed_tokens.weight", &hf.embed, {}},
                                         {"model.norm.weight", &hf.rms_final, {}}};
    if (!c.tied) list.push_back({"lm_head.weight", &hf.classifier, {}});
    for (int l = 0; l < c.layers; ++l)
        for (const auto& [name, ours] : kHfLayerNames)
            if (const Tensor& t = hf.layers[std::size_t(l)].get(ours); !t.empty())
                list.push_back({"model.layers." + std::to_string(l) + "." + name, &t, {}});
    std::filesystem::create_directories(folder);
    write_safetensors(folder + "/model.safetensors", list, dtype, {});
    nlohmann::json cfg = {{"architectures", {f.architecture}},   {"hidden_size", c.dim},
                          {"intermediate_size", c.hidden},       {"num_hidden_layers", c.layers},
                          {"num_attention_heads", c.heads},     {"num_key_value_heads", c.kv_heads},
                          {"head_dim", c.head_dim},             {"vocab_size", c.vocab},
                          {"max_position_embeddings", c.seq},   {"rope_theta", c.rope_theta},
                          {"rms_norm_eps", c.norm_eps},         {"tie_word_embeddings", c.tied},
                          {"use_sliding_window", false}};
    if (f.qk_norm) cfg["attention_bias"] = false;
    std::ofstream(folder + "/config.json") << cfg.dump();
}

// The HF model as stored (16-bit values rounded) in the reference's HF form.
test::RefModel stored_reference(const std::string& folder, const ModelConfig& c) {
    const SafetensorsFile f(folder + "/model.safetensors");
    Weights stored = Weights::zeros(c);
    stored.embed = f.read(*f.find("model.embed_tokens.weight"));
    stored.rms_final = f.read(*f.find("model.norm.weight"));
    if (!c.tied) stored.classifier = f.read(*f.find("lm_head.weight"));
    for (int l = 0; l < c.layers; ++l)
        for (const auto& [name, ours] : kHfLayerNames)
            if (const auto* info = f.find("model.layers." + std::to_string(l) + "." + name))
                stored.layers[std::size_t(l)].get(ours) = f.read(*info);
    test::RefModel ref = test::to_ref(stored);
    ref.rope_halves = true;
    return ref;
}

Weights random_hf_weights(const ModelConfig& c, unsigned seed) {
    Weights w = test::random_weights(c, seed);
    w.for_each([](const std::string& name, Tensor& t) {
        for (auto& x : t.span()) x = is_norm_gain(name) ? 1.0f + 0.2f * x : 0.3f * x;
    });
    return w;
}

void expect_logits_near(const test::Mat& got, const test::Mat& want, double tol, const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t t = 0; t < got.size(); ++t)
        for (std::size_t v = 0; v < got[t].size(); ++v) ASSERT_NEAR(got[t][v], want[t][v], tol) << what << " t=" << t;
}

}  // namespace

TEST(ModelFamilies, QwenCheckpointsComputeWhatTheHuggingFaceModelComputes) {
    test::TempDir dir;
    const std::vector<int> tokens = {2, 7, 1, 8, 2, 8, 1, 8};
    for (const Family& f : {kQwen2, kQwen3})
        for (bool tied : {true, false})
            for (HfDtype dtype : {HfDtype::F32, HfDtype::BF16}) {
                const std::string what = std::string(f.architecture) + (tied ? " tied" : " untied") +
                                         (dtype == HfDtype::F32 ? " f32" : " bf16");
                const ModelConfig c = family_config(f, tied);
                const Weights hf = random_hf_weights(c, 17);
                const std::string folder = dir.path(std::string(f.architecture) + (tied ? "t" : "u") +
                                                    std::to_string(int(dtype)));
                write_hf_folder(hf, f, folder, dtype);
                const auto want = test::ref_logits(stored_reference(folder, c), tokens);

                const Checkpoint imported = read_hf_model(folder);
                EXPECT_EQ(imported.weights.config.attention_bias, f.bias) << what;
                EXPECT_EQ(imported.weights.config.qk_norm, f.qk_norm) << what;
                expect_logits_near(test::ref_logits(test::to_ref(imported.weights), tokens), want, 1e-9, what);

                // Through BLZT (the extras ride in the trailer) and GGUF, the same model.
                write_blzt(imported, dir.path("m.blzt"));
                const Checkpoint blzt = read_blzt(dir.path("m.blzt"));
                EXPECT_TRUE(blzt.weights.bit_equal(imported.weights)) << what;
                write_gguf_model(blzt, {}, GgufExportType::F32, dir.path("m.gguf"));
                const GgufFile g(dir.path("m.gguf"));
                EXPECT_EQ(g.find("general.architecture")->s, f.qk_norm ? "qwen3" : "qwen2") << what;
                // NEOX order: the GGUF's Q rows are Hugging Face's.
                const Tensor gq = g.read_tensor(*g.find_tensor("blk.0.attn_q.weight"));
                const Tensor hq = SafetensorsFile(folder + "/model.safetensors")
                                      .read(*SafetensorsFile(folder + "/model.safetensors")
                                                 .find("model.layers.0.self_attn.q_proj.weight"));
                EXPECT_TRUE(gq.bit_equal(hq)) << what;
                const Checkpoint from_gguf = read_gguf_model(dir.path("m.gguf"));
                EXPECT_TRUE(from_gguf.weights.bit_equal(imported.weights)) << what;

                if (dtype != HfDtype::F32) continue;
                write_hf_model(blzt, dir.path("back"), HfDtype::F32);
                const auto cfg = nlohmann::json::parse(read_text_file(dir.path("back/config.json")));
                EXPECT_EQ(cfg["architectures"][0], f.architecture);
                const SafetensorsFile back(dir.path("back/model.safetensors")), orig(folder + "/model.safetensors");
                EXPECT_EQ(back.tensors().size(), orig.tensors().size());
                for (const auto& info : orig.tensors())
                    EXPECT_TRUE(back.read(*back.find(info.name)).bit_equal(orig.read(info))) << info.name;
                std::filesystem::remove_all(dir.path("back"));
            }
}

TEST(ModelFamilies, WhatTheModelCannotRepresentIsRefusedByName) {
    test::TempDir dir;
    const ModelConfig c = family_config(kQwen3, true);
    write_hf_folder(random_hf_weights(c, 3), kQwen3, dir.path("q3"), HfDtype::F32);
    auto cfg = nlohmann::json::parse(read_text_file(dir.path("q3/config.json")));
    auto refused = [&](const nlohmann::json& edited, const std::string& words) {
        std::ofstream(dir.path("q3/config.json")) << edited.dump();
        try {
            read_hf_model(dir.path("q3"));
            ADD_FAILURE() << "read: " << edited.dump();
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    };
    auto with_bias = cfg;
    with_bias["attention_bias"] = true;  // Qwen3's bias covers o_proj too
    refused(with_bias, "Qwen3ForCausalLM with attention_bias");
    auto sliding = cfg;
    sliding["use_sliding_window"] = true;
    refused(sliding, "sliding-window");
    auto as_llama = cfg;  // the q_norm tensors are then not part of the model
    as_llama["architectures"] = {"LlamaForCausalLM"};
    refused(as_llama, "_norm.weight' is not part of a LlamaForCausalLM model");
    auto as_qwen2 = cfg;  // no biases in the file
    as_qwen2["architectures"] = {"Qwen2ForCausalLM"};
    refused(as_qwen2, "is not part of");
    auto phi = cfg;
    phi["architectures"] = {"Phi3ForCausalLM"};
    refused(phi, "architecture 'Phi3ForCausalLM' is not supported");

    // Mistral's sliding window bounds the context instead: attention within it is exact.
    Checkpoint llama;
    llama.weights = test::random_weights(test::tiny_config(true), 5);
    write_hf_model(llama, dir.path("mistral"), HfDtype::F32);
    auto mistral = nlohmann::json::parse(read_text_file(dir.path("mistral/config.json")));
    mistral["architectures"] = {"MistralForCausalLM"};
    mistral["sliding_window"] = 8;
    std::ofstream(dir.path("mistral/config.json")) << mistral.dump();
    EXPECT_EQ(read_hf_model(dir.path("mistral")).weights.config.seq, 8);

    // Biases and QK-norm together have neither a HF nor a GGUF form.
    Checkpoint both;
    ModelConfig bc = c;
    bc.attention_bias = true;
    both.weights = test::random_weights(bc, 4);
    EXPECT_THROW(write_hf_model(both, dir.path("both"), HfDtype::F32), Error);
    EXPECT_THROW(write_gguf_model(both, {}, GgufExportType::F32, dir.path("both.gguf")), Error);
    EXPECT_FALSE(std::filesystem::exists(dir.path("both.gguf")));
}
