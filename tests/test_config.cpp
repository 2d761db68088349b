#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/config.hpp"
#include "ane/error.hpp"
#include "test_util.hpp"

using namespace ane;

// Parameter counts and BLZT sizes quoted in spec/checkpoint.md §4.
TEST(Config, PresetSizesMatchTheSpecTable) {
    struct Row {
        const char* name;
        std::uint64_t blzt_bytes;
    } rows[] = {{"autoresearch", 437311584ull},  {"smollm2_135m", 1614180192ull}, {"smollm2_360m", 4341853536ull},
                {"qwen3_06b", 7152513120ull},    {"stories110m", 1314358368ull}};
    for (const auto& r : rows) {
        const ModelConfig c = preset(r.name);
        EXPECT_EQ(blzt_body_bytes(c), r.blzt_bytes) << r.name;
        EXPECT_NO_THROW(c.validate(r.name));
    }
    EXPECT_NEAR(preset("autoresearch").params() / 1e6, 36.44, 0.01);
    EXPECT_EQ(preset("qwen3_06b").head_dim, 128);
    EXPECT_EQ(preset("qwen3_06b").rope_theta, 1e6);
    EXPECT_EQ(preset("smollm2_360m").rope_theta, 1e5);
    EXPECT_NEAR(preset("autoresearch").residual_scale, 1 / std::sqrt(8.0), 1e-12);
}

TEST(Config, EveryPresetIsValidAndUnknownNamesAreListed) {
    for (const auto& name : preset_names()) EXPECT_NO_THROW(preset(name).validate(name));
    try {
        preset("nope");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("stories15m"), std::string::npos);
    }
}

TEST(Config, JsonRoundTrip) {
    const ModelConfig c = test::tiny_config(false);
    const nlohmann::json j = c;
    const ModelConfig back = j.get<ModelConfig>();
    EXPECT_TRUE(back.same_shape(c));
    EXPECT_EQ(back.seq, c.seq);
    EXPECT_EQ(back.rope_theta, c.rope_theta);
    EXPECT_EQ(back.norm_eps, c.norm_eps);
    EXPECT_EQ(back.residual_scale, c.residual_scale);
    EXPECT_EQ(back.name, c.name);
}

TEST(Config, JsonDefaultsAndErrors) {
    auto j = nlohmann::json::parse(R"({"dim": 64, "hidden": 172, "heads": 8, "seq": 32, "layers": 2, "vocab": 512})");
    const ModelConfig c = j.get<ModelConfig>();
    EXPECT_EQ(c.kv_heads, 8);
    EXPECT_EQ(c.head_dim, 8);
    EXPECT_TRUE(c.tied);
    EXPECT_EQ(c.rope_theta, 1e4);
    EXPECT_NEAR(c.residual_scale, 0.5, 1e-12);
    j["dimm"] = 3;
    EXPECT_THROW(j.get<ModelConfig>(), Error);
    j.erase("dimm");
    j.erase("dim");
    EXPECT_THROW(j.get<ModelConfig>(), Error);
}

TEST(Config, ValidateRejectsInconsistentHeads) {
    ModelConfig c = test::tiny_config();
    c.kv_heads = 3;
    EXPECT_THROW(c.validate("x"), Error);
    c = test::tiny_config();
    c.head_dim = 3;
    EXPECT_THROW(c.validate("x"), Error);
    c = test::tiny_config();
    c.dim = 0;
    EXPECT_THROW(c.validate("x"), Error);
}

TEST(Config, FileRoundTrip) {
    test::TempDir dir;
    const ModelConfig c = preset("golf");
    save_config_json(c, dir.path("c.json"));
    const ModelConfig back = load_config_json(dir.path("c.json"));
    EXPECT_TRUE(back.same_shape(c));
    test::write_bytes(dir.path("bad.json"), {'{', 'x'});
    EXPECT_THROW(load_config_json(dir.path("bad.json")), Error);
}

TEST(Config, Llama3RopeScalingRoundTripsAndIsChecked) {
    ModelConfig c = preset("stories15m");
    c.rope_llama3 = {8.0, 1.0, 4.0, 8192};
    nlohmann::json j = c;
    EXPECT_EQ(j["rope_scaling"]["rope_type"], "llama3");
    EXPECT_EQ(j.get<ModelConfig>().rope_llama3, c.rope_llama3);
    c.rope_llama3.high_freq_factor = 0.5;  // not above low_freq_factor
    EXPECT_THROW(c.validate("cfg"), Error);
    j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
    EXPECT_THROW(j.get<ModelConfig>(), Error);
}
