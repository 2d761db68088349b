#include <gtest/gtest.h>

#include <cstring>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/llama2c.hpp"
#include "ane/model_file.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {
const std::string kStories = "stories260K-llama2c/stories260K.bin";
}

TEST(Llama2c, Stories260KLoadsWithItsPublishedShape) {
    const std::string path = test::shared_data(kStories);
    ANE_REQUIRE_SHARED(path);
    EXPECT_EQ(detect_file_kind(path), FileKind::Llama2c);
    const Weights w = read_llama2c(path);
    const ModelConfig& c = w.config;
    EXPECT_EQ(c.dim, 64);
    EXPECT_EQ(c.hidden, 172);
    EXPECT_EQ(c.layers, 5);
    EXPECT_EQ(c.heads, 8);
    EXPECT_EQ(c.kv_heads, 4);
    EXPECT_EQ(c.head_dim, 8);
    EXPECT_EQ(c.vocab, 512);
    EXPECT_EQ(c.seq, 512);
    EXPECT_TRUE(c.tied);
    EXPECT_EQ(c.residual_scale, 1.0);
}

// Every tensor compared with the bytes at the offset spec/checkpoint.md §6 gives for it,
// computed here independently of the reader.
TEST(Llama2c, TensorsMatchTheirSpecOffsets) {
    const std::string path = test::shared_data(kStories);
    ANE_REQUIRE_SHARED(path);
    const MappedFile file(path);
    Weights w = read_llama2c(path);
    const std::int64_t D = 64, H = 172, L = 5, V = 512, KV = 32;
    std::size_t offset = 28;
    auto expect_at = [&](const Tensor& t, const std::string& what) {
        ASSERT_EQ(std::memcmp(t.data(), file.data() + offset, t.bytes()), 0) << what;
        offset += t.bytes();
    };
    expect_at(w.embed, "embed");
    const std::pair<const char*, std::int64_t> groups[] = {{"rms_att", D},      {"wq", D * D},  {"wk", KV * D},
                                                           {"wv", KV * D},      {"wo", D * D},  {"rms_ffn", D},
                                                           {"w1", H * D},       {"w2", D * H},  {"w3", H * D}};
    for (const auto& [name, numel] : groups)
        for (int l = 0; l < L; ++l) {
            const Tensor& t = *w.find("layers." + std::to_string(l) + "." + name);
            ASSERT_EQ(t.numel(), numel);
            expect_at(t, name);
        }
    expect_at(w.rms_final, "rms_final");
    EXPECT_EQ(offset + 2 * 512 * 4 * 4, file.size());
    EXPECT_EQ(V * D, w.embed.numel());
    EXPECT_FLOAT_EQ(w.rms_final[0], 2.4583089351654053f);
}

TEST(Llama2c, ConvertsToBlztAndBack) {
    const std::string path = test::shared_data(kStories);
    ANE_REQUIRE_SHARED(path);
    test::TempDir dir;
    Checkpoint ck = load_model(path);
    write_blzt(ck, dir.path("s.blzt"));
    const Checkpoint back = load_model(dir.path("s.blzt"));
    EXPECT_TRUE(back.weights.bit_equal(ck.weights));
    EXPECT_EQ(back.weights.config.seq, 512);
}

TEST(Llama2c, TruncatedFileIsNotTakenForAModel) {
    const std::string path = test::shared_data(kStories);
    ANE_REQUIRE_SHARED(path);
    test::TempDir dir;
    auto bytes = test::read_bytes(path);
    bytes.resize(bytes.size() - 6);
    test::write_bytes(dir.path("cut.bin"), bytes);
    EXPECT_FALSE(looks_like_llama2c(bytes.data(), bytes.size()));
    EXPECT_THROW(read_llama2c(dir.path("cut.bin")), Error);
    EXPECT_THROW(load_model(dir.path("cut.bin")), Error);
}
