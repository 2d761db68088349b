// LoRA: the spec's initialisation, split forward against merged weights and the double
// reference, adapter gradients against the chain rule, checkpoint round trips and merging.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/mezo/lora.hpp"
#include "ane/model/transformer.hpp"
#include "ane/model_file.hpp"
#include "ane/sampling.hpp"
#include "reference_model.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

Lora random_lora(const ModelConfig& c, int rank, const std::string& targets, unsigned seed) {
    Lora lora = Lora::zeros(c, rank, parse_lora_targets(targets));
    unsigned k = seed;
    lora.for_each([&](const std::string&, Tensor& t) {
        for (auto& x : t.span()) x = 0.3f * float(std::sin(0.37 * double(++k)));
    });
    return lora;
}

TEST(Lora, TargetsParse) {
    EXPECT_EQ(lora_targets_string(parse_lora_targets("attn")), "wq,wk,wv,wo");
    EXPECT_EQ(lora_targets_string(parse_lora_targets("ffn")), "w1,w2,w3");
    EXPECT_EQ(lora_targets_string(parse_lora_targets("all")), "wq,wk,wv,wo,w1,w2,w3");
    EXPECT_EQ(lora_targets_string(parse_lora_targets("q,v")), "wq,wv");
    EXPECT_THROW(parse_lora_targets("wz"), Error);
    EXPECT_THROW(Lora::zeros(test::tiny_config(), 9, parse_lora_targets("attn")), Error);  // rank > dim 8
}

TEST(Lora, InitFollowsTrainMezo) {
    const ModelConfig c = test::tiny_config();
    const int r = 2;
    const Lora lora = Lora::init(c, r, parse_lora_targets("all"), 42);
    Drand48 rng(42 + 12345);
    auto next = [&] { return float(1.0 / std::sqrt(double(r))) * float(2.0 * rng.next() - 1.0); };
    // Per layer: Aq, Ak, Av, Ao, then A1, A3, A2; every B zero.
    for (int l = 0; l < c.layers; ++l)
        for (LoraTarget t : {kWq, kWk, kWv, kWo, kW1, kW3, kW2}) {
            const Tensor& a = lora.at(l, t).a;
            for (std::int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a[i], next()) << l << " " << t << " " << i;
            for (float b : lora.at(l, t).b.span()) ASSERT_EQ(b, 0.0f);
        }
    EXPECT_EQ(lora.at(0, kWq).a.shape(), (Shape{r, c.dim}));
    EXPECT_EQ(lora.at(0, kWq).b.shape(), (Shape{c.q_dim(), r}));
    EXPECT_EQ(lora.at(0, kW2).a.shape(), (Shape{r, c.hidden}));
}

TEST(Lora, SplitForwardEqualsMergedWeightsAndTheReference) {
    for (const char* targets : {"attn", "all", "w2,wv"}) {
        const ModelConfig c = test::tiny_config(false);
        const Weights base = test::random_weights(c, 4);
        const Lora lora = random_lora(c, 3, targets, 11);
        Weights merged = base;
        merge_lora(merged, lora);
        auto device = make_device("cpu", 1);
        Transformer split(base, *device, 2, VocabMap::identity(c.vocab), /*for_training=*/false);
        split.set_lora(&lora);
        Transformer plain(merged, *device, 2, VocabMap::identity(c.vocab));
        const std::vector<std::int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
        split.forward(tokens.data(), 2, 6);
        plain.forward(tokens.data(), 2, 6);
        const auto z = test::ref_logits(test::to_ref(merged), std::vector<int>(tokens.begin(), tokens.begin() + 6));
        for (int t = 0; t < 12; ++t)
            for (int v = 0; v < c.vocab; ++v) {
                // x·W + (x·Aᵀ)·Bᵀ against x·(W + B·A): fp32 sums in another order, so relative.
                const float want = plain.logits()[t * c.vocab + v];
                ASSERT_NEAR(split.logits()[t * c.vocab + v], want, 2e-5 * std::max(1.0f, std::fabs(want))) << targets;
                if (t < 6) {
                    ASSERT_NEAR(split.logits()[t * c.vocab + v], z[t][v], 1e-4) << targets;
                }
            }
    }
}

// With W_eff = W + B·A: dL/dB = dL/dW_eff · A^T and dL/dA = B^T · dL/dW_eff, where dL/dW_eff
// comes from the (separately verified) full backward at the merged weights.
TEST(Lora, AdapterGradientsFollowTheChainRule) {
    const ModelConfig c = test::tiny_config(true);
    const Weights base = test::random_weights(c, 8);
    const Lora lora = random_lora(c, 2, "all", 5);
    Weights merged = base;
    merge_lora(merged, lora);
    const int B = 2, S = 5;
    const std::vector<std::int32_t> inputs = {1, 4, 2, 9, 4, 0, 3, 3, 7, 1}, targets = {4, 2, 9, 4, 0, 3, 3, 7, 1, 10};
    auto device = make_device("cpu", 1);

    Transformer full(merged, *device, B, VocabMap::identity(c.vocab));
    full.forward(inputs.data(), B, S);
    const double loss_full = full.loss_and_dlogits(targets.data(), 1.0f);
    Weights g_full = Weights::zeros(c);
    full.backward(g_full);

    Transformer split(base, *device, B, VocabMap::identity(c.vocab));
    split.set_lora(&lora);
    split.forward(inputs.data(), B, S);
    EXPECT_NEAR(split.loss_and_dlogits(targets.data(), 1.0f), loss_full, 1e-5);
    Weights g_norms = Weights::norms_only(c);
    Lora g_lora = Lora::zeros(c, lora.rank, lora.targets);
    split.backward(g_norms, &g_lora);

    EXPECT_TRUE(g_norms.embed.empty() && g_norms.layers[0].wq.empty());  // the frozen base gets nothing
    for (int l = 0; l < c.layers; ++l) {
        for (const char* n : {"rms_att", "rms_ffn"}) {
            const std::string name = "layers." + std::to_string(l) + "." + n;
            const Tensor &got = *g_norms.find(name), &want = *g_full.find(name);
            for (std::int64_t i = 0; i < got.numel(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << name;
        }
        for (int t = 0; t < kLoraTargetCount; ++t) {
            const LoraAdapter& ad = lora.at(l, LoraTarget(t));
            const Tensor& dW = target_weight(g_full.layers[l], LoraTarget(t));
            const int out = int(ad.b.rows()), in = int(ad.a.cols()), r = lora.rank;
            for (int o = 0; o < out; ++o)
                for (int k = 0; k < r; ++k) {
                    double want = 0;
                    for (int i = 0; i < in; ++i) want += double(dW[o * in + i]) * ad.a[k * in + i];
                    ASSERT_NEAR(g_lora.at(l, LoraTarget(t)).b[o * r + k], want, 1e-5) << l << " " << t;
                }
            for (int k = 0; k < r; ++k)
                for (int i = 0; i < in; ++i) {
                    double want = 0;
                    for (int o = 0; o < out; ++o) want += double(ad.b[o * r + k]) * dW[o * in + i];
                    ASSERT_NEAR(g_lora.at(l, LoraTarget(t)).a[k * in + i], want, 1e-5) << l << " " << t;
                }
        }
    }
    for (std::int64_t i = 0; i < c.dim; ++i) EXPECT_NEAR(g_norms.rms_final[i], g_full.rms_final[i], 1e-5);
}

TEST(Lora, CheckpointRoundTripAndMerge) {
    test::TempDir dir;
    const ModelConfig c = test::tiny_config(false);
    Checkpoint ck;
    ck.weights = test::random_weights(c, 2);
    ck.lora = random_lora(c, 2, "wq,wo,w2", 3);
    ck.lora_adam["m.layers.0.wq.lora_a"] = ck.lora->at(0, kWq).a;
    write_blzt(ck, dir.path("lora.bin"));

    const Checkpoint back = read_blzt(dir.path("lora.bin"));
    ASSERT_TRUE(back.lora.has_value());
    EXPECT_TRUE(back.lora->bit_equal(*ck.lora));
    EXPECT_TRUE(back.weights.bit_equal(ck.weights));
    ASSERT_EQ(back.lora_adam.size(), 1u);
    EXPECT_TRUE(back.lora_adam.at("m.layers.0.wq.lora_a").bit_equal(ck.lora->at(0, kWq).a));

    // Every other reader sees the adapted model: the weights with B·A folded in.
    Weights merged = ck.weights;
    merge_lora(merged, *ck.lora);
    const Checkpoint loaded = load_model(dir.path("lora.bin"));
    EXPECT_FALSE(loaded.lora.has_value());
    EXPECT_TRUE(loaded.weights.bit_equal(merged));

    const auto r = test::run(std::string(ANE_CONVERT_BIN) + " merge-lora " + dir.path("lora.bin") + " -o " +
                             dir.path("merged.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Checkpoint cli = read_blzt(dir.path("merged.bin"));
    EXPECT_FALSE(cli.lora.has_value());
    EXPECT_TRUE(cli.weights.bit_equal(merged));
    const auto again = test::run(std::string(ANE_CONVERT_BIN) + " merge-lora " + dir.path("merged.bin") + " -o " +
                                 dir.path("twice.bin"));
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find("has no LoRA adapters"), std::string::npos) << again.err;
}

}  // namespace
}  // namespace ane
