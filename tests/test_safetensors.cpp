#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ane/error.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/safetensors.hpp"
#include "ane/model/transformer.hpp"
#include "ane/model_file.hpp"
#include "reference_model.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

// A safetensors file assembled by hand from the format's description.
void write_hand_safetensors(const std::string& path, const std::string& header_json,
                            const std::vector<float>& data) {
    const std::uint64_t n = header_json.size();
    std::vector<std::uint8_t> b(8 + n + data.size() * 4);
    std::memcpy(b.data(), &n, 8);
    std::memcpy(b.data() + 8, header_json.data(), n);
    if (!data.empty()) std::memcpy(b.data() + 8 + n, data.data(), data.size() * 4);
    test::write_bytes(path, b);
}

Checkpoint small_model(bool tied, double alpha) {
    ModelConfig c = test::tiny_config(tied);
    c.residual_scale = alpha;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 11);
    ck.weights.for_each([](const std::string&, Tensor& t) {
        for (auto& x : t.span()) x *= 0.3f;
    });
    return ck;
}

}  // namespace

TEST(Safetensors, ReadsAHandAssembledFile) {
    test::TempDir dir;
    write_hand_safetensors(dir.path("a.safetensors"),
                           R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]},)"
                           R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           {1, 2, 3, 4, 5});
    const SafetensorsFile f(dir.path("a.safetensors"));
    ASSERT_EQ(f.tensors().size(), 2u);
    EXPECT_EQ(f.metadata()["format"], "pt");
    const Tensor a = f.read(*f.find("a")), b = f.read(*f.find("b"));
    EXPECT_EQ(a.shape(), (Shape{2}));
    EXPECT_EQ(a[1], 2.0f);
    EXPECT_EQ(b[0], 3.0f);
    EXPECT_EQ(b[2], 5.0f);
    // Offsets past the data, sizes that disagree with the shape, and truncation are errors.
    write_hand_safetensors(dir.path("bad.safetensors"), R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                           {1, 2, 3});
    EXPECT_THROW(SafetensorsFile(dir.path("bad.safetensors")), Error);
    write_hand_safetensors(dir.path("bad2.safetensors"), R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                           {1, 2, 3});
    EXPECT_THROW(SafetensorsFile(dir.path("bad2.safetensors")), Error);
    auto bytes = test::read_bytes(dir.path("a.safetensors"));
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
        test::write_bytes(dir.path("cut.safetensors"), std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + cut));
        try {
            SafetensorsFile f2(dir.path("cut.safetensors"));
            if (cut < bytes.size()) ADD_FAILURE() << "cut at " << cut << " accepted";
        } catch (const Error&) {
        }
    }
}

// export-hf's tensors, read raw and run with Hugging Face's rotate_half RoPE and no residual
// scale, give the logits our model gives: the Q/K permutation and the α folding are right.
TEST(Safetensors, ExportedModelIsTheSameModelUnderHuggingFaceConventions) {
    test::TempDir dir;
    for (bool tied : {true, false}) {
        const Checkpoint ck = small_model(tied, 0.5);
        write_hf_model(ck, dir.path("hf"), HfDtype::F32);
        const SafetensorsFile f(dir.path("hf/model.safetensors"));
        Weights raw = Weights::zeros([&] {
            ModelConfig c = ck.weights.config;
            c.residual_scale = 1.0;
            return c;
        }());
        const std::pair<const char*, const char*> names[] = {
            {"self_attn.q_proj.weight", "wq"}, {"self_attn.k_proj.weight", "wk"}, {"self_attn.v_proj.weight", "wv"},
            {"self_attn.o_proj.weight", "wo"}, {"mlp.gate_proj.weight", "w1"},    {"mlp.down_proj.weight", "w2"},
            {"mlp.up_proj.weight", "w3"},      {"input_layernorm.weight", "rms_att"},
            {"post_attention_layernorm.weight", "rms_ffn"}};
        for (int l = 0; l < raw.config.layers; ++l)
            for (const auto& [hf, ours] : names)
                *raw.find("layers." + std::to_string(l) + "." + ours) =
                    f.read(*f.find("model.layers." + std::to_string(l) + "." + hf));
        raw.embed = f.read(*f.find("model.embed_tokens.weight"));
        raw.rms_final = f.read(*f.find("model.norm.weight"));
        if (!tied) raw.classifier = f.read(*f.find("lm_head.weight"));
        test::RefModel hf = test::to_ref(raw);
        hf.rope_halves = true;
        const std::vector<int> tokens = {3, 1, 4, 1, 5, 9};
        const auto want = test::ref_logits(test::to_ref(ck.weights), tokens);
        const auto got = test::ref_logits(hf, tokens);
        for (std::size_t t = 0; t < tokens.size(); ++t)
            for (int v = 0; v < ck.weights.config.vocab; ++v) ASSERT_NEAR(got[t][v], want[t][v], 1e-9);
        const auto cfg = nlohmann::json::parse(read_text_file(dir.path("hf/config.json")));
        EXPECT_EQ(cfg["tie_word_embeddings"], tied);
        EXPECT_EQ(cfg["head_dim"], ck.weights.config.head_dim);
        EXPECT_EQ(cfg["num_key_value_heads"], ck.weights.config.kv_heads);
        EXPECT_EQ(cfg["rope_theta"], ck.weights.config.rope_theta);
        std::filesystem::remove_all(dir.path("hf"));
    }
}

TEST(Safetensors, HfRoundTripAndShardedIndex) {
    test::TempDir dir;
    Checkpoint ck = small_model(false, 1.0);
    write_hf_model(ck, dir.path("hf"), HfDtype::F32);
    const Checkpoint back = read_hf_model(dir.path("hf"));
    EXPECT_TRUE(back.weights.bit_equal(ck.weights));
    EXPECT_EQ(back.weights.config.rope_theta, ck.weights.config.rope_theta);
    EXPECT_EQ(back.weights.config.norm_eps, ck.weights.config.norm_eps);
    EXPECT_EQ(detect_file_kind(dir.path("hf")), FileKind::HuggingFace);
    EXPECT_EQ(detect_file_kind(dir.path("hf/model.safetensors")), FileKind::HuggingFace);

    // Split the tensors over two shards with an index, as large checkpoints come.
    const SafetensorsFile whole(dir.path("hf/model.safetensors"));
    std::vector<Tensor> keep;
    keep.reserve(whole.tensors().size());
    std::vector<SafetensorEntry> a, b;
    nlohmann::json map;
    for (std::size_t i = 0; i < whole.tensors().size(); ++i) {
        keep.push_back(whole.read(whole.tensors()[i]));
        const std::string shard = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
        (i % 2 ? b : a).push_back({whole.tensors()[i].name, &keep.back(), {}});
        map[whole.tensors()[i].name] = shard;
    }
    std::filesystem::create_directories(dir.path("sharded"));
    write_safetensors(dir.path("sharded/model-00001-of-00002.safetensors"), a, HfDtype::BF16, {});
    write_safetensors(dir.path("sharded/model-00002-of-00002.safetensors"), b, HfDtype::BF16, {});
    std::ofstream(dir.path("sharded/model.safetensors.index.json")) << nlohmann::json{{"weight_map", map}}.dump();
    std::filesystem::copy(dir.path("hf/config.json"), dir.path("sharded/config.json"));
    const Checkpoint sharded = read_hf_model(dir.path("sharded"));
    double worst = 0;
    Weights& sw = const_cast<Weights&>(sharded.weights);
    ck.weights.for_each([&](const std::string& n, const Tensor& t) {
        const Tensor& u = *sw.find(n);
        for (std::int64_t i = 0; i < t.numel(); ++i)
            worst = std::max(worst, double(std::fabs(u[i] - t[i])) / std::max(1e-3, double(std::fabs(t[i]))));
    });
    EXPECT_LT(worst, 1.0 / 128);  // bfloat16's 8-bit mantissa
}

TEST(Safetensors, UnsupportedModelsAreNamed) {
    test::TempDir dir;
    write_hf_model(small_model(true, 1.0), dir.path("hf"), HfDtype::F32);
    auto cfg = nlohmann::json::parse(read_text_file(dir.path("hf/config.json")));
    cfg["architectures"] = {"GPT2LMHeadModel"};
    std::ofstream(dir.path("hf/config.json")) << cfg.dump();
    try {
        read_hf_model(dir.path("hf"));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("GPT2LMHeadModel"), std::string::npos) << e.what();
    }
    cfg["architectures"] = {"Qwen2ForCausalLM"};
    cfg["attention_bias"] = true;
    std::ofstream(dir.path("hf/config.json")) << cfg.dump();
    EXPECT_THROW(read_hf_model(dir.path("hf")), Error);
    std::filesystem::remove(dir.path("hf/config.json"));
    EXPECT_THROW(read_hf_model(dir.path("hf")), Error);
}

// A Hugging Face checkpoint written by the test itself, with split-halves Q/K, in F32, F16
// and BF16, tied and untied: imported, it computes what the HF model computes.
TEST(Safetensors, ImportedModelMatchesTheHuggingFaceModel) {
    test::TempDir dir;
    for (bool tied : {true, false})
        for (HfDtype dtype : {HfDtype::F32, HfDtype::F16, HfDtype::BF16}) {
            ModelConfig c = test::tiny_config(tied);
            c.residual_scale = 1.0;
            Weights hf = test::random_weights(c, 21);  // taken as HF tensors, Q/K rows in split halves
            hf.for_each([](const std::string&, Tensor& t) {
                for (auto& x : t.span()) x *= 0.3f;
            });
            std::vector<SafetensorEntry> list = {{"model.embed_tokens.weight", &hf.embed, {}},
                                                 {"model.norm.weight", &hf.rms_final, {}}};
            if (!tied) list.push_back({"lm_head.weight", &hf.classifier, {}});
            const std::pair<const char*, const char*> names[] = {
                {"self_attn.q_proj.weight", "wq"}, {"self_attn.k_proj.weight", "wk"}, {"self_attn.v_proj.weight", "wv"},
                {"self_attn.o_proj.weight", "wo"}, {"mlp.gate_proj.weight", "w1"},    {"mlp.down_proj.weight", "w2"},
                {"mlp.up_proj.weight", "w3"},      {"input_layernorm.weight", "rms_att"},
                {"post_attention_layernorm.weight", "rms_ffn"}};
            for (int l = 0; l < c.layers; ++l)
                for (const auto& [h, ours] : names)
                    list.push_back({"model.layers." + std::to_string(l) + "." + h,
                                    hf.find("layers." + std::to_string(l) + "." + ours), {}});
            const std::string folder = dir.path("m" + std::to_string(int(dtype)) + (tied ? "t" : "u"));
            std::filesystem::create_directories(folder);
            write_safetensors(folder + "/model.safetensors", list, dtype, {});
            const nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", c.dim},
                                        {"intermediate_size", c.hidden},       {"num_hidden_layers", c.layers},
                                        {"num_attention_heads", c.heads},     {"num_key_value_heads", c.kv_heads},
                                        {"head_dim", c.head_dim},             {"vocab_size", c.vocab},
                                        {"max_position_embeddings", c.seq},   {"rope_theta", c.rope_theta},
                                        {"rms_norm_eps", c.norm_eps},         {"tie_word_embeddings", tied}};
            std::ofstream(folder + "/config.json") << cfg.dump();

            // The HF model as stored (16-bit values rounded), run with rotate_half RoPE.
            const SafetensorsFile f(folder + "/model.safetensors");
            Weights stored = Weights::zeros(c);
            stored.embed = f.read(*f.find("model.embed_tokens.weight"));
            stored.rms_final = f.read(*f.find("model.norm.weight"));
            if (!tied) stored.classifier = f.read(*f.find("lm_head.weight"));
            for (int l = 0; l < c.layers; ++l)
                for (const auto& [h, ours] : names)
                    *stored.find("layers." + std::to_string(l) + "." + ours) =
                        f.read(*f.find("model.layers." + std::to_string(l) + "." + h));
            test::RefModel ref = test::to_ref(stored);
            ref.rope_halves = true;
            const std::vector<int> tokens = {2, 7, 1, 8, 2, 8};
            const auto want = test::ref_logits(ref, tokens);

            const Checkpoint imported = read_hf_model(folder);
            EXPECT_EQ(imported.weights.config.tied, tied);
            const auto got = test::ref_logits(test::to_ref(imported.weights), tokens);
            for (std::size_t t = 0; t < tokens.size(); ++t)
                for (int v = 0; v < c.vocab; ++v) ASSERT_NEAR(got[t][v], want[t][v], 1e-9) << int(dtype) << tied;
            // F32 goes to BLZT and back to HF bit-exactly.
            if (dtype == HfDtype::F32) {
                write_blzt(imported, dir.path("x.blzt"));
                write_hf_model(read_blzt(dir.path("x.blzt")), dir.path("back"), HfDtype::F32);
                const SafetensorsFile back(dir.path("back/model.safetensors"));
                for (const auto& e : list) {
                    const Tensor a = back.read(*back.find(e.name));
                    EXPECT_TRUE(a.bit_equal(*e.src)) << e.name;
                }
                std::filesystem::remove_all(dir.path("back"));
            }
        }
}

// Llama 3's rope_scaling: kept through Hugging Face import and export and the BLZT trailer,
// written to GGUF as llama.cpp's rope_freqs and read back from it; other scaling types are refused by name.
TEST(Safetensors, Llama3RopeScalingTravelsAndOtherTypesAreRefused) {
    test::TempDir dir;
    Checkpoint ck;
    ModelConfig c = test::tiny_config(false);
    c.head_dim = 8;
    c.residual_scale = 1.0;
    c.rope_llama3 = {8.0, 1.0, 4.0, 256};
    ck.weights = test::random_weights(c, 3);
    write_hf_model(ck, dir.path("hf"), HfDtype::F32);
    const auto cfg = nlohmann::json::parse(std::ifstream(dir.path("hf/config.json")));
    EXPECT_EQ(cfg["rope_scaling"]["rope_type"], "llama3");
    EXPECT_EQ(cfg["rope_scaling"]["factor"], 8.0);
    EXPECT_EQ(cfg["rope_scaling"]["original_max_position_embeddings"], 256);
    const Checkpoint back = read_hf_model(dir.path("hf"));
    EXPECT_EQ(back.weights.config.rope_llama3, c.rope_llama3);
    write_blzt(back, dir.path("m.bin"));
    EXPECT_EQ(read_blzt(dir.path("m.bin")).weights.config.rope_llama3, c.rope_llama3);

    write_gguf_model(back, {}, GgufExportType::F32, dir.path("m.gguf"));
    const GgufFile g(dir.path("m.gguf"));
    const GgufTensorInfo* freqs = g.find_tensor("rope_freqs.weight");
    ASSERT_NE(freqs, nullptr);
    const Tensor t = g.read_tensor(*freqs);
    const auto d = c.rope_divisors();
    ASSERT_EQ(std::size_t(t.numel()), d.size());
    for (std::size_t i = 0; i < d.size(); ++i) EXPECT_FLOAT_EQ(t.data()[i], float(d[i]));
    // ... and read back from rope_freqs, giving the same frequencies and the same logits.
    const Checkpoint from_gguf = read_gguf_model(dir.path("m.gguf"));
    EXPECT_EQ(from_gguf.weights.config.rope_divisors(), c.rope_divisors());
    EXPECT_EQ(from_gguf.weights.config.rope_llama3.original_context, 256);
    const std::vector<std::int32_t> tokens = {1, 5, 9, 2, 7};
    const auto want = test::ref_logits(test::to_ref(ck.weights), tokens);
    const auto got = test::ref_logits(test::to_ref(from_gguf.weights), tokens);
    for (std::size_t i = 0; i < tokens.size(); ++i)
        for (int v = 0; v < c.vocab; ++v) ASSERT_NEAR(got[i][v], want[i][v], 1e-5);

    auto yarn = cfg;
    yarn["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    std::ofstream(dir.path("hf/config.json")) << yarn.dump();
    try {
        read_hf_model(dir.path("hf"));
        ADD_FAILURE() << "yarn scaling was read";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("rope_scaling of type 'yarn' is not supported"), std::string::npos) << e.what();
    }
}
