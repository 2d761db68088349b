// ane-mezo and backprop LoRA end to end: a real pretrained model (stories260K) fine-tuned on
// a text it has not seen (Shakespeare), resumes, merging, errors.
#include <gtest/gtest.h>

#include <cstdlib>

#include "ane/checkpoint.hpp"
#include "ane/model/transformer.hpp"
#include "ane/model_file.hpp"
#include "reference_model.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

const std::string kMezo = ANE_MEZO_BIN;
const std::string kTrain = ANE_TRAIN_BIN;

struct FineTune {
    test::TempDir dir;
    std::string model, data;
    bool ready = false;

    FineTune() {
        model = test::shared_data("stories260K-llama2c/stories260K.bin");
        const std::string tok = test::shared_data("stories260K-llama2c/tok512.bin");
        const std::string text = test::shared_data("tinyshakespeare/input.txt");
        if (!std::filesystem::exists(model) || !std::filesystem::exists(text)) return;
        auto bytes = test::read_bytes(text);
        bytes.resize(12000);
        test::write_bytes(dir.path("shake.txt"), bytes);
        data = dir.path("shake.bin");
        const auto r = test::run(std::string(ANE_CONVERT_BIN) + " -q tokens -t " + tok + " -o " + data + " " +
                                 dir.path("shake.txt"));
        ready = r.exit_code == 0;
        EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    // Common flags: windows of 64 tokens, validation on the last 10% at the end.
    std::string run_flags(int steps) const {
        return " --init " + model + " --data " + data + " --seq 64 --steps " + std::to_string(steps) +
               " --eval-every " + std::to_string(steps) + " --threads 1 -q -f";
    }
};

double mezo_best_val(const FineTune& f, const std::string& flags, int steps, const std::string& out) {
    const auto r = test::run(kMezo + f.run_flags(steps) + " -o " + f.dir.path(out) + " " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return test::report_value(r.out, "best_val_loss");
}

// The validation loss before any update: one step at learning rate 0 (exact restore).
double baseline(const FineTune& f) { return mezo_best_val(f, "--lr 0", 1, "base.bin"); }

#define REQUIRE_FINETUNE(f)                                                                        \
    ANE_REQUIRE_SHARED(test::shared_data("stories260K-llama2c/stories260K.bin"));                  \
    ANE_REQUIRE_SHARED(test::shared_data("tinyshakespeare/input.txt"));                            \
    ASSERT_TRUE(f.ready)

TEST(CliMezo, FullParameterLowersValidationLoss) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const double before = baseline(f);
    const double after = mezo_best_val(f, "--lr 1e-4", 300, "full.bin");
    EXPECT_LT(after, before - 0.05) << "before " << before;
}

TEST(CliMezo, LoraMergeAndSplitLowerValidationLossAlike) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const double before = baseline(f);
    const double split = mezo_best_val(f, "--lora split --lr 1e-3", 300, "split.bin");
    const double merge = mezo_best_val(f, "--lora merge --lr 1e-3", 300, "merge.bin");
    EXPECT_LT(split, before - 0.05) << "before " << before;
    EXPECT_LT(merge, before - 0.05) << "before " << before;
    // The same z, data and updates: the two modes differ only by float rounding.
    EXPECT_NEAR(split, merge, 0.02);
}

TEST(CliMezo, OneSidedSamplesLowerValidationLoss) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const double before = baseline(f);
    EXPECT_LT(mezo_best_val(f, "--lora split --lr 1e-3 --zo-samples 4", 150, "fzoo.bin"), before - 0.05);
}

TEST(CliMezo, BackpropLoraLowersValidationLossFasterThanMezo) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const double before = baseline(f);
    const double mezo = mezo_best_val(f, "--lora split --lr 1e-3", 300, "mezo.bin");
    // 60 backprop steps cost about 180 forward passes; MeZO's 300 steps cost 600.
    const auto r = test::run(kTrain + f.run_flags(60) + " --batch 1 --lora-rank 8 --lr 3e-3 --warmup 5 -o " +
                             f.dir.path("bp.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const double backprop = test::report_value(r.out, "best_val_loss");
    EXPECT_LT(backprop, before - 0.05);
    EXPECT_LT(backprop, mezo) << "before " << before;
    EXPECT_NE(r.out.find("mode: backprop-lora"), std::string::npos);
}

// AutoANE merges the adapters into the layer weights after each update and still adds the
// split correction, so the adapter counts twice. Here the base stays untouched and the model
// the checkpoint describes (base + B·A once) is the one that was evaluated.
TEST(CliMezo, BackpropLoraAppliesTheAdapterOnce) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const auto r = test::run(kTrain + f.run_flags(20) + " --batch 2 --lora-rank 4 --lora-targets all --lr 1e-2 --warmup 2 -o " +
                             f.dir.path("bp.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Checkpoint init = load_model(f.model);
    const Checkpoint ck = read_blzt(f.dir.path("bp.bin"));
    ASSERT_TRUE(ck.lora.has_value());
    // The frozen base is bit for bit the initial model (only the RMS gains train).
    for (std::size_t l = 0; l < init.weights.layers.size(); ++l)
        for (int t = 0; t < kLoraTargetCount; ++t)
            EXPECT_TRUE(target_weight(ck.weights.layers[l], LoraTarget(t))
                            .bit_equal(target_weight(init.weights.layers[l], LoraTarget(t))));
    EXPECT_TRUE(ck.weights.embed.bit_equal(init.weights.embed));
    EXPECT_FALSE(ck.weights.layers[0].rms_att.bit_equal(init.weights.layers[0].rms_att));
    double moved = 0;
    for (float b : ck.lora->at(0, kWq).b.span()) moved += std::fabs(b);
    EXPECT_GT(moved, 0.0);

    // Split forward (what training ran) equals the double reference on W_base + B·A.
    ModelConfig c = ck.weights.config;
    c.seq = 16;
    Weights base = ck.weights, merged = ck.weights, twice = ck.weights;
    base.config = merged.config = twice.config = c;
    merge_lora(merged, *ck.lora);
    merge_lora(twice, *ck.lora);
    merge_lora(twice, *ck.lora);
    auto device = make_device("cpu", 1);
    Transformer split(base, *device, 1, VocabMap::identity(c.vocab), false);
    split.set_lora(&*ck.lora);
    const std::vector<std::int32_t> tokens = {1, 403, 261, 370, 285, 266, 264, 300, 29, 15, 99, 7, 350, 411, 30, 2};
    split.forward(tokens.data(), 1, 16);
    const auto once = test::ref_logits(test::to_ref(merged), std::vector<int>(tokens.begin(), tokens.end()));
    const auto doubled = test::ref_logits(test::to_ref(twice), std::vector<int>(tokens.begin(), tokens.end()));
    double err_once = 0, err_twice = 0;
    for (int t = 0; t < 16; ++t)
        for (int v = 0; v < c.vocab; ++v) {
            err_once = std::max(err_once, std::fabs(split.logits()[t * c.vocab + v] - once[t][v]));
            err_twice = std::max(err_twice, std::fabs(split.logits()[t * c.vocab + v] - doubled[t][v]));
        }
    EXPECT_LT(err_once, 1e-3);
    EXPECT_GT(err_twice, 100 * err_once);
}

Checkpoint read_final(const FineTune& f, const std::string& name) { return read_blzt(f.dir.path(name)); }

TEST(CliMezo, ResumeContinuesExactlyAndMergeFoldsTheAdapters) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    // Runs compared bit for bit: one matrix-product library for all of them.
    const std::string lora = " --lora split --lora-rank 4 --lr 1e-3 --seq 32 --eval-every 4 -q -f --threads 1 --gemm openblas";
    const std::string src = " --data " + f.data + " --steps 8";
    auto ok = [](const test::RunResult& r) {
        EXPECT_EQ(r.exit_code, 0) << r.err;
    };
    ok(test::run(kMezo + " --init " + f.model + src + lora + " -o " + f.dir.path("straight.bin")));
    ok(test::run(kMezo + " --init " + f.model + src + lora + " --stop-after 4 -o " + f.dir.path("chunked.bin")));
    ok(test::run(kMezo + " --resume " + f.dir.path("chunked.bin") + " --data " + f.data +
                 " -q -f --threads 1 --gemm openblas -o " + f.dir.path("chunked.bin")));
    const Checkpoint a = read_final(f, "straight.bin"), b = read_final(f, "chunked.bin");
    ASSERT_TRUE(a.lora && b.lora);
    EXPECT_EQ(b.state.step, 8);
    EXPECT_TRUE(a.weights.bit_equal(b.weights));
    EXPECT_TRUE(a.lora->bit_equal(*b.lora));

    // --merge writes base + B·A without adapters; ane-convert merge-lora gives the same.
    ok(test::run(kMezo + " --init " + f.model + src + lora + " --merge -o " + f.dir.path("merged.bin")));
    ok(test::run(std::string(ANE_CONVERT_BIN) + " -q merge-lora " + f.dir.path("straight.bin") + " -o " +
                 f.dir.path("converted.bin")));
    const Checkpoint m = read_final(f, "merged.bin"), cv = read_final(f, "converted.bin");
    EXPECT_FALSE(m.lora.has_value());
    EXPECT_TRUE(m.weights.bit_equal(cv.weights));
    Weights want = a.weights;
    merge_lora(want, *a.lora);
    EXPECT_TRUE(m.weights.bit_equal(want));
}

// --restore arithmetic: train_mezo's floats in two sweeps a step, each restore and update left to
// the next step's first sweep. An evaluation, a save and a resume in the middle of a run apply
// the one left over first, so a run in two parts ends where one run ends, bit for bit; and the
// model trains as the exact restore's does, to float rounding.
TEST(CliMezo, ArithmeticRestoreResumesExactlyAndTrainsAsTheExactOne) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const std::string flags = " --data " + f.data + " --steps 8 --seq 32 --eval-every 3 --lr 1e-4 --restore arithmetic"
                              " -f --threads 1 --gemm openblas";
    const auto straight = test::run(kMezo + " --init " + f.model + flags + " -o " + f.dir.path("straight.bin"));
    ASSERT_EQ(straight.exit_code, 0) << straight.err;
    EXPECT_NE((straight.out + straight.err).find("fused into the next step's first sweep"), std::string::npos)
        << straight.err;
    ASSERT_EQ(test::run(kMezo + " --init " + f.model + flags + " -q --stop-after 4 -o " + f.dir.path("chunked.bin"))
                  .exit_code,
              0);
    const auto r = test::run(kMezo + " --resume " + f.dir.path("chunked.bin") + " --data " + f.data +
                             " -q -f --threads 1 --gemm openblas -o " + f.dir.path("chunked.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Checkpoint a = read_final(f, "straight.bin"), b = read_final(f, "chunked.bin");
    EXPECT_EQ(b.state.step, 8);
    EXPECT_TRUE(a.weights.bit_equal(b.weights));

    const double exact = mezo_best_val(f, "--lr 1e-4", 100, "exact.bin");
    const double arithmetic = mezo_best_val(f, "--lr 1e-4 --restore arithmetic", 100, "arithmetic.bin");
    EXPECT_NEAR(arithmetic, exact, 2e-3);
    EXPECT_NE(arithmetic, exact) << "the restore by arithmetic rounds, so the runs differ in their last bits";
}

TEST(CliMezo, BackpropLoraResumesExactly) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const std::string flags = " --data " + f.data + " --seq 32 --steps 6 --batch 2 --lora-rank 4 --warmup 2 --lr 1e-2 -q -f --threads 1 --eval-every 3 --gemm openblas";
    ASSERT_EQ(test::run(kTrain + " --init " + f.model + flags + " -o " + f.dir.path("a.bin")).exit_code, 0);
    ASSERT_EQ(test::run(kTrain + " --init " + f.model + flags + " --stop-after 3 -o " + f.dir.path("b.bin")).exit_code, 0);
    const auto r = test::run(kTrain + " --resume " + f.dir.path("b.bin") + " --data " + f.data + " -q -f --threads 1 --gemm openblas -o " + f.dir.path("b.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Checkpoint a = read_final(f, "a.bin"), b = read_final(f, "b.bin");
    ASSERT_TRUE(a.lora && b.lora);
    EXPECT_TRUE(a.weights.bit_equal(b.weights));
    EXPECT_TRUE(a.lora->bit_equal(*b.lora));
    EXPECT_FALSE(b.lora_adam.empty());
}

TEST(CliMezo, ReportsProjectedGradientAndForwardCost) {
    FineTune f;
    REQUIRE_FINETUNE(f);
    const std::string log = f.dir.path("log.jsonl");
    std::string flags = f.run_flags(5);
    flags.erase(flags.find(" -q"), 3);  // the whole report, not only its key: value lines
    const auto r = test::run(kMezo + flags + " --log-json " + log + " -o " + f.dir.path("m.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("a step costs"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("mode: mezo-full"), std::string::npos);
    EXPECT_GT(test::report_value(r.out, "peak_rss_mb"), 0.0);
    const auto lines = test::read_bytes(log);
    const std::string text(lines.begin(), lines.end());
    EXPECT_NE(text.find("\"proj_grad\""), std::string::npos) << text;
    EXPECT_NE(text.find("\"loss_minus\""), std::string::npos);
}

TEST(CliMezo, BadArgumentsAreOneLineErrors) {
    test::TempDir dir;
    const std::string tokens = dir.path("t.bin");
    test::write_bytes(tokens, std::vector<std::uint8_t>(4000, 1));
    auto r = test::run(kMezo + " --preset stories15m --data " + tokens + " --lora-rank 4 -o " + dir.path("o.bin"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("need --lora split or --lora merge"), std::string::npos) << r.err;
    r = test::run(kMezo + " --preset stories15m --data " + tokens + " --lora split --lora-targets wz -o " + dir.path("o.bin"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("unknown LoRA target 'wz'"), std::string::npos) << r.err;
    r = test::run(kMezo + " --preset stories15m --data " + dir.path("missing.bin") + " -o " + dir.path("o.bin"));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_FALSE(std::filesystem::exists(dir.path("o.bin")));
}

}  // namespace
}  // namespace ane
