#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/artifact.hpp"
#include "ane/half.hpp"
#include "ane/model/transformer.hpp"
#include "ane/model_file.hpp"
#include "ane/sampling.hpp"
#include "ane/token_file.hpp"
#include "ane/tokenizer.hpp"
#include "ane/train/trainer.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

Checkpoint packable_model() {
    ModelConfig c = test::tiny_config(false);
    c.dim = 64;
    c.hidden = 1100;  // w1/w2/w3 of 70,400 elements: int8 rows; the rest stays fp16
    c.head_dim = 16;
    c.vocab = 50;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 8);
    ck.weights.layers[0].w1[5] = 40.0f;  // an outlier the clip must handle
    ck.tokenizer_model = {9, 8, 7};
    return ck;
}

double mean_val_loss(const Weights& w, std::span<const std::uint16_t> val, int S, int windows) {
    auto dev = make_device("cpu", 2);
    Transformer m(w, *dev, 1, VocabMap::identity(w.config.vocab));
    const auto offsets = mezo_validation_offsets(0, val.size(), S, windows);
    double total = 0;
    std::vector<std::int32_t> in(S), tg(S);
    for (auto off : offsets) {
        for (int t = 0; t < S; ++t) in[t] = val[off + t], tg[t] = val[off + t + 1];
        m.forward(in.data(), 1, S);
        total += m.loss_and_dlogits(tg.data(), 1.0f);
    }
    return total / double(offsets.size());
}

}  // namespace

TEST(Artifact, ClipValueIsTheInterpolatedQuantile) {
    std::vector<float> row(1000);
    for (int i = 0; i < 1000; ++i) row[i] = float(i % 2 ? i : -i);
    // position 0.9999984 * 999 = 998.9984: between 998 and 999.
    EXPECT_NEAR(row_clip_value(row.data(), 1000), 998.0 + 0.9984, 1e-3);
    EXPECT_EQ(row_clip_value(row.data(), 1), 0.0f);
}

TEST(Artifact, PackUnpackStaysWithinTheInt8RowBound) {
    test::TempDir dir;
    const Checkpoint ck = packable_model();
    for (auto codec : {ArtifactCodec::Zlib, ArtifactCodec::Zstd}) {
        const PackReport rep = write_artifact(ck, dir.path("m.art"), codec, codec == ArtifactCodec::Zlib ? 9 : 3);
        EXPECT_LT(rep.compressed_bytes, rep.float_bytes / 2);
        EXPECT_EQ(detect_file_kind(dir.path("m.art")), FileKind::Artifact);
        const Checkpoint back = read_artifact(dir.path("m.art"));
        EXPECT_TRUE(back.weights.config.same_shape(ck.weights.config));
        EXPECT_EQ(back.weights.config.residual_scale, ck.weights.config.residual_scale);
        EXPECT_EQ(back.tokenizer_model, ck.tokenizer_model);
        auto& bw = const_cast<Weights&>(back.weights);
        int int8_tensors = 0;
        ck.weights.for_each([&](const std::string& name, const Tensor& t) {
            const Tensor& u = *bw.find(name);
            if (t.shape().size() == 2 && t.numel() > kKeepFp16MaxElements) {
                ++int8_tensors;
                for (std::int64_t r = 0; r < t.rows(); ++r) {
                    const float clip = row_clip_value(t.row(r), t.cols());
                    const float s = fp16_to_float(float_to_fp16(clip / 127.0f));
                    for (std::int64_t c = 0; c < t.cols(); ++c) {
                        const float w = t.row(r)[c];
                        const float bound = std::max(s / 2, std::fabs(w) - 127 * s) + 1e-6f;
                        ASSERT_LE(std::fabs(u.row(r)[c] - w), bound) << name << " row " << r;
                    }
                }
            } else {
                for (std::int64_t i = 0; i < t.numel(); ++i)
                    ASSERT_EQ(u[i], fp16_to_float(float_to_fp16(t[i]))) << name;
            }
        });
        EXPECT_EQ(int8_tensors, 6);
    }
}

TEST(Artifact, CorruptArtifactsAreRejected) {
    test::TempDir dir;
    write_artifact(packable_model(), dir.path("m.art"), ArtifactCodec::Zlib, 6);
    const auto bytes = test::read_bytes(dir.path("m.art"));
    for (std::size_t cut : {std::size_t(3), std::size_t(20), std::size_t(41), bytes.size() / 2, bytes.size() - 1}) {
        test::write_bytes(dir.path("cut.art"), std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(cut)));
        EXPECT_THROW(read_artifact(dir.path("cut.art")), Error) << cut;
    }
    std::mt19937 rng(1);
    for (int i = 0; i < 50; ++i) {
        auto b = bytes;
        b[40 + rng() % (b.size() - 40)] ^= 0x10;
        test::write_bytes(dir.path("flip.art"), b);
        EXPECT_THROW(read_artifact(dir.path("flip.art")), Error);  // zlib's checksum catches it
    }
}

// A model trained on real text loses under 1% of validation loss when packed.
TEST(Artifact, PackedModelKeepsItsValidationLoss) {
    for (const auto& path : test::text_model_inputs()) ANE_REQUIRE_SHARED(path);
    test::TempDir dir;
    ModelConfig c;
    c.dim = 128, c.hidden = 512, c.heads = 4, c.kv_heads = 2, c.head_dim = 32, c.seq = 64, c.layers = 2;
    const test::TextModel tm = test::train_text_model(dir, c, 60, 3e-3f);
    const Checkpoint& ck = tm.ck;
    write_artifact(ck, dir.path("m.int8.zlib"), ArtifactCodec::Zlib, 9);
    const Checkpoint packed = read_artifact(dir.path("m.int8.zlib"));
    const std::span<const std::uint16_t> val(tm.ids.data() + split_train_val(tm.ids.size()).val_start,
                                             tm.ids.size() - split_train_val(tm.ids.size()).val_start);
    const double a = mean_val_loss(ck.weights, val, 64, 32), b = mean_val_loss(packed.weights, val, 64, 32);
    EXPECT_LT(a, std::log(1024.0) - 0.5);  // it learned something
    EXPECT_LT(std::fabs(b - a) / a, 0.01) << "float " << a << ", packed " << b;
}
