#include <gtest/gtest.h>

#include "ane/weights.hpp"
#include "test_util.hpp"

using namespace ane;

TEST(Weights, CanonicalNamesAndShapes) {
    const ModelConfig c = test::tiny_config(false);
    Weights w = Weights::zeros(c);
    std::vector<std::string> names;
    std::int64_t total = 0;
    w.for_each([&](const std::string& n, Tensor& t) {
        names.push_back(n);
        total += t.numel();
    });
    ASSERT_EQ(names.size(), 9u * 2 + 3);
    EXPECT_EQ(names[0], "layers.0.wq");
    EXPECT_EQ(names[8], "layers.0.rms_ffn");
    EXPECT_EQ(names[18], "rms_final");
    EXPECT_EQ(names[19], "embed");
    EXPECT_EQ(names[20], "classifier");
    EXPECT_EQ(total, c.params());
    EXPECT_EQ(w.find("layers.1.wk")->shape(), (Shape{c.kv_dim(), c.dim}));
    EXPECT_EQ(w.find("layers.1.wo")->shape(), (Shape{c.dim, c.q_dim()}));
    EXPECT_EQ(w.find("layers.1.w2")->shape(), (Shape{c.dim, c.hidden}));
    EXPECT_EQ(w.find("nope"), nullptr);
}

TEST(Weights, TensorsAreAligned) {
    Tensor t({3, 5});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data()) % 64, 0u);
    Tensor copy = t;
    EXPECT_TRUE(copy.bit_equal(t));
}

TEST(Weights, RopeRowPermutationMovesHalvesToPairs) {
    const int heads = 2, hd = 6, cols = 3;
    Tensor w({heads * hd, cols});
    for (int r = 0; r < heads * hd; ++r)
        for (int c = 0; c < cols; ++c) w.row(r)[c] = float(r * 100 + c);
    Tensor p = w;
    rope_rows_halves_to_interleaved(p, heads, hd);
    // HF row h*hd+i goes to h*hd+2i, HF row h*hd+hd/2+i to h*hd+2i+1 (spec/index.md fact 6).
    for (int h = 0; h < heads; ++h)
        for (int i = 0; i < hd / 2; ++i)
            for (int c = 0; c < cols; ++c) {
                EXPECT_EQ(p.row(h * hd + 2 * i)[c], w.row(h * hd + i)[c]);
                EXPECT_EQ(p.row(h * hd + 2 * i + 1)[c], w.row(h * hd + hd / 2 + i)[c]);
            }
    rope_rows_interleaved_to_halves(p, heads, hd);
    EXPECT_TRUE(p.bit_equal(w));
}
