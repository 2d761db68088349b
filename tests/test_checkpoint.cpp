#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"
#include "ane/error.hpp"
#include "ane/model_file.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

// Appends little-endian values, field by field, independently of the writer.
struct Bytes {
    std::vector<std::uint8_t> v;
    template <typename T>
    void put(T x) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(&x);
        v.insert(v.end(), p, p + sizeof(T));
    }
};

// A distinct value for element i of the k-th array written.
float value(int k, std::int64_t i) { return float(k) * 1000.0f + float(i) * 0.5f; }

struct HandBuilt {
    ModelConfig c;
    std::vector<std::uint8_t> bytes;
};

// Assembles a v4 file (or v2/v3 with zero trailing ints) from spec/checkpoint.md §1-2.
HandBuilt hand_built(int version) {
    ModelConfig c;
    c.dim = 8;
    c.hidden = 12;
    c.heads = 4;
    c.kv_heads = version == 4 ? 2 : 4;
    c.head_dim = 2;
    c.seq = 32;
    c.layers = 2;
    c.vocab = 7;
    Bytes b;
    b.put<std::int32_t>(0x424C5A54);
    b.put<std::int32_t>(version);
    b.put<std::int32_t>(123);    // step
    b.put<std::int32_t>(5000);   // total_steps
    b.put<std::int32_t>(c.layers);
    b.put<std::int32_t>(c.vocab);
    b.put<std::int32_t>(c.dim);
    b.put<std::int32_t>(c.hidden);
    b.put<std::int32_t>(c.heads);
    b.put<std::int32_t>(c.seq);
    b.put<float>(2.5e-4f);       // lr
    b.put<float>(3.25f);         // loss
    b.put<double>(0.0);          // cum_compile
    b.put<double>(1234.5);       // cum_train
    b.put<double>(6789.25);      // cum_wall
    b.put<std::int32_t>(77);     // cum_steps
    b.put<std::int32_t>(0);      // cum_batches
    b.put<std::int32_t>(12);     // adam_t
    b.put<std::int32_t>(version == 4 ? c.kv_heads : 0);
    b.put<std::int32_t>(version == 4 ? c.head_dim : 0);
    b.put<std::int32_t>(version == 4 ? c.q_dim() : 0);
    EXPECT_EQ(b.v.size(), 96u);
    const std::int64_t D = c.dim, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim();
    const std::int64_t sizes[9] = {Q * D, KV * D, KV * D, D * Q, H * D, D * H, H * D, D, D};
    int k = 0;
    for (int l = 0; l < c.layers; ++l) {
        for (auto n : sizes) {
            for (std::int64_t i = 0; i < n; ++i) b.put(value(k, i));
            ++k;
        }
        for (auto n : sizes)
            for (int mv = 0; mv < 2; ++mv) {
                for (std::int64_t i = 0; i < n; ++i) b.put(value(k, i));
                ++k;
            }
    }
    for (std::int64_t n : {D, D, D, std::int64_t(c.vocab) * D, std::int64_t(c.vocab) * D, std::int64_t(c.vocab) * D}) {
        for (std::int64_t i = 0; i < n; ++i) b.put(value(k, i));
        ++k;
    }
    return {c, b.v};
}

void expect_values(const Tensor& t, int k) {
    for (std::int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t[i], value(k, i)) << "array " << k << " element " << i;
}

void check_hand_built(const Checkpoint& ck, const ModelConfig& c, bool moments) {
    EXPECT_TRUE(ck.weights.config.same_shape(c));
    EXPECT_EQ(ck.weights.config.seq, 32);
    EXPECT_EQ(ck.state.step, 123);
    EXPECT_EQ(ck.state.total_steps, 5000);
    EXPECT_FLOAT_EQ(ck.state.lr, 2.5e-4f);
    EXPECT_FLOAT_EQ(ck.state.loss, 3.25f);
    EXPECT_DOUBLE_EQ(ck.state.cum_train_ms, 1234.5);
    EXPECT_DOUBLE_EQ(ck.state.cum_wall_ms, 6789.25);
    EXPECT_EQ(ck.state.cum_steps, 77);
    EXPECT_EQ(ck.state.adam_t, 12);
    const char* names[] = {"wq", "wk", "wv", "wo", "w1", "w2", "w3", "rms_att", "rms_ffn"};
    int k = 0;
    for (int l = 0; l < c.layers; ++l) {
        for (const char* n : names) expect_values(*const_cast<Weights&>(ck.weights).find("layers." + std::to_string(l) + "." + n), k++);
        for (const char* n : names) {
            const std::string name = "layers." + std::to_string(l) + "." + n;
            if (moments) {
                expect_values(*const_cast<Weights&>(ck.adam->m).find(name), k);
                expect_values(*const_cast<Weights&>(ck.adam->v).find(name), k + 1);
            }
            k += 2;
        }
    }
    expect_values(ck.weights.rms_final, k);
    if (moments) {
        expect_values(ck.adam->m.rms_final, k + 1);
        expect_values(ck.adam->v.rms_final, k + 2);
    }
    expect_values(ck.weights.embed, k + 3);
    if (moments) {
        expect_values(ck.adam->m.embed, k + 4);
        expect_values(ck.adam->v.embed, k + 5);
    }
}

// The smallest valid model: keeps the truncate-at-every-byte test quick.
ModelConfig micro_config(bool tied) {
    ModelConfig c = test::tiny_config(tied);
    c.dim = 2;
    c.hidden = 2;
    c.heads = 1;
    c.kv_heads = 1;
    c.head_dim = 2;
    c.layers = 1;
    c.vocab = 3;
    return c;
}

Checkpoint random_checkpoint(bool tied, bool with_moments, const ModelConfig* config = nullptr) {
    const ModelConfig c = config ? *config : test::tiny_config(tied);
    Checkpoint ck;
    ck.weights = test::random_weights(c, 7);
    if (with_moments) ck.adam = AdamMoments{test::random_weights(c, 8), test::random_weights(c, 9)};
    ck.state.step = 41;
    ck.state.adam_t = 4;
    ck.state.lr = 1e-3f;
    ck.state.cum_wall_ms = 99.5;
    ck.metadata = {{"source", "unit test"}};
    return ck;
}

}  // namespace

TEST(Checkpoint, ReadsAHandAssembledV4File) {
    test::TempDir dir;
    const auto hb = hand_built(4);
    EXPECT_EQ(hb.bytes.size(), blzt_body_bytes(hb.c));
    test::write_bytes(dir.path("a.bin"), hb.bytes);
    check_hand_built(read_blzt(dir.path("a.bin"), {.load_moments = true}), hb.c, true);
    const Checkpoint weights_only = read_blzt(dir.path("a.bin"));
    EXPECT_FALSE(weights_only.adam.has_value());
    EXPECT_FALSE(weights_only.had_trailer);
    check_hand_built(weights_only, hb.c, false);
}

TEST(Checkpoint, ReadsMaderixV2AndV3AsMultiHead) {
    test::TempDir dir;
    for (int version : {2, 3}) {
        const auto hb = hand_built(version);
        test::write_bytes(dir.path("old.bin"), hb.bytes);
        const Checkpoint ck = read_blzt(dir.path("old.bin"), {.load_moments = true});
        EXPECT_EQ(ck.source_version, version);
        EXPECT_EQ(ck.weights.config.kv_heads, 4);
        EXPECT_EQ(ck.weights.config.head_dim, 2);
        check_hand_built(ck, hb.c, true);
    }
}

TEST(Checkpoint, WriterProducesTheHandAssembledBytes) {
    test::TempDir dir;
    const auto hb = hand_built(4);
    test::write_bytes(dir.path("a.bin"), hb.bytes);
    Checkpoint ck = read_blzt(dir.path("a.bin"), {.load_moments = true});
    write_blzt(ck, dir.path("b.bin"));
    const auto written = test::read_bytes(dir.path("b.bin"));
    ASSERT_GT(written.size(), hb.bytes.size());  // body plus our trailer
    EXPECT_TRUE(std::equal(hb.bytes.begin(), hb.bytes.end(), written.begin()));
}

TEST(Checkpoint, RoundTripIsBitExact) {
    test::TempDir dir;
    for (bool tied : {true, false}) {
        Checkpoint ck = random_checkpoint(tied, true);
        ck.tokenizer_model = {1, 2, 3, 250};
        write_blzt(ck, dir.path("rt.bin"));
        const Checkpoint back = read_blzt(dir.path("rt.bin"), {.load_moments = true});
        EXPECT_TRUE(back.had_trailer);
        EXPECT_TRUE(back.weights.bit_equal(ck.weights)) << "tied " << tied;
        ASSERT_TRUE(back.adam.has_value());
        EXPECT_TRUE(back.adam->m.bit_equal(ck.adam->m));
        EXPECT_TRUE(back.adam->v.bit_equal(ck.adam->v));
        EXPECT_EQ(back.weights.config.rope_theta, 5e4);
        EXPECT_EQ(back.weights.config.norm_eps, 1e-6);
        EXPECT_EQ(back.weights.config.residual_scale, 0.5);
        EXPECT_EQ(back.weights.config.tied, tied);
        EXPECT_EQ(back.metadata["source"], "unit test");
        EXPECT_EQ(back.tokenizer_model, ck.tokenizer_model);
        EXPECT_EQ(back.state.step, 41);
        EXPECT_EQ(back.state.adam_t, 4);
        EXPECT_EQ(back.state.cum_wall_ms, 99.5);
    }
}

TEST(Checkpoint, MissingMomentsAreWrittenAsZeros) {
    test::TempDir dir;
    write_blzt(random_checkpoint(true, false), dir.path("z.bin"));
    const Checkpoint back = read_blzt(dir.path("z.bin"), {.load_moments = true});
    back.adam->m.for_each([](const std::string&, const Tensor& t) {
        for (float x : t.span()) ASSERT_EQ(x, 0.0f);
    });
}

TEST(Checkpoint, FileWithTrailerStillReadsAsPlainV4) {
    // AutoANE reads the header and the body and ignores what follows: cutting the trailer
    // off must leave a complete v4 file with the same weights.
    test::TempDir dir;
    const Checkpoint ck = random_checkpoint(true, true);
    write_blzt(ck, dir.path("t.bin"));
    auto bytes = test::read_bytes(dir.path("t.bin"));
    const std::uint64_t body = blzt_body_bytes(ck.weights.config);
    ASSERT_GT(bytes.size(), body);
    EXPECT_EQ(std::memcmp(bytes.data() + body, "ANETRAIL", 8), 0);
    bytes.resize(body);
    test::write_bytes(dir.path("plain.bin"), bytes);
    const Checkpoint plain = read_blzt(dir.path("plain.bin"), {.load_moments = true});
    EXPECT_FALSE(plain.had_trailer);
    EXPECT_TRUE(plain.weights.embed.bit_equal(ck.weights.embed));
    EXPECT_TRUE(plain.adam->v.layers[1].w2.bit_equal(ck.adam->v.layers[1].w2));
}

TEST(Checkpoint, TruncationAtAnyByteIsRejected) {
    test::TempDir dir;
    for (bool tied : {true, false}) {
        const ModelConfig c = micro_config(tied);
        write_blzt(random_checkpoint(tied, true, &c), dir.path("full.bin"));
        const auto bytes = test::read_bytes(dir.path("full.bin"));
        const std::uint64_t body = blzt_body_bytes(c);
        for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
            if (cut == body) continue;  // exactly the v4 body: a valid file without trailer
            test::write_bytes(dir.path("cut.bin"), std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + cut));
            try {
                read_blzt(dir.path("cut.bin"), {.load_moments = true});
                ADD_FAILURE() << "cut at " << cut << " was accepted";
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find("cut.bin"), std::string::npos) << e.what();
            }
        }
    }
}

TEST(Checkpoint, CorruptHeadersAreRejectedWithTheFileName) {
    test::TempDir dir;
    const auto good = hand_built(4).bytes;
    auto corrupt = [&](std::size_t offset, std::int32_t v) {
        auto b = good;
        std::memcpy(b.data() + offset, &v, 4);
        test::write_bytes(dir.path("bad.bin"), b);
        EXPECT_THROW(read_blzt(dir.path("bad.bin")), Error) << "offset " << offset;
    };
    corrupt(4, 5);            // version
    corrupt(4, 1);
    corrupt(16, 0);           // n_layers
    corrupt(16, -3);
    corrupt(24, 1 << 30);     // dim
    corrupt(32, 3);           // n_heads not a multiple of kv_heads
    corrupt(84, 0);           // kv_heads
    corrupt(92, 99);          // q_dim
    corrupt(8, -1);           // step
    corrupt(20, 0x7fffffff);  // vocab
    auto b = good;
    b.push_back(1);
    test::write_bytes(dir.path("junk.bin"), b);
    EXPECT_THROW(read_blzt(dir.path("junk.bin")), Error);
}

TEST(Checkpoint, FailedSaveLeavesTheExistingFileUntouched) {
    test::TempDir dir;
    const std::string path = dir.path("keep.bin");
    write_blzt(random_checkpoint(true, false), path);
    const auto before = test::read_bytes(path);
    Checkpoint bad = random_checkpoint(true, false);
    bad.weights.layers[0].wq = Tensor({3, 3});
    EXPECT_THROW(write_blzt(bad, path), Error);
    EXPECT_EQ(test::read_bytes(path), before);
    EXPECT_FALSE(std::filesystem::exists(temporary_path(path)));
    EXPECT_THROW(write_blzt(random_checkpoint(true, false), dir.path("no/such/dir/x.bin")), Error);
}
