#include <gtest/gtest.h>

#include <cctype>
#include <cmath>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/model/init.hpp"
#include "ane/model/transformer.hpp"
#include "ane/optim.hpp"
#include "ane/token_file.hpp"
#include "ane/train/report.hpp"
#include "ane/train/trainer.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {


ModelConfig small_config() {
    ModelConfig c = test::tiny_config(true);
    c.vocab = 16;
    c.seq = 8;
    c.residual_scale = deepnet_residual_scale(c.layers);
    return c;
}

struct Fixture {
    test::TempDir dir;
    std::string data, config;
    Fixture() {
        data = dir.path("train.bin");
        write_token_file(data, test::phrase_tokens(4000, 1), TokenFormat::Raw);
        config = dir.path("model.json");
        save_config_json(small_config(), config);
    }
    TrainOptions options(const std::string& out) const {
        TrainOptions o;
        o.config_path = config;
        o.data = data;
        o.output = dir.path(out);
        o.steps = 12;
        o.batch = 4;
        o.warmup = 3;
        o.lr = 3e-3f;
        o.eval_every = 4;
        o.eval_windows = 4;
        o.threads = 1;
        o.gemm = "openblas";  // runs compared bit for bit
        return o;
    }
};

const std::atomic<bool> kNoStop{false};

}  // namespace

// The gradient norm against a plain double loop (blocks on all threads change only the order of
// the sum), NaN carried through, and nothing left after zero_grads.
TEST(Optim, GradientNormAndZeroing) {
    std::vector<float> big(300001);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = float(std::sin(0.37 * double(i))) * (1.0f + float(i % 7));
    double want = 0;
    for (float x : big) want += double(x) * double(x);
    EXPECT_NEAR(sum_of_squares(big.data(), std::int64_t(big.size())), want, 1e-12 * want);
    EXPECT_EQ(sum_of_squares(big.data(), 0), 0.0);

    Weights g = test::random_weights(test::tiny_config(false), 2);
    double total = 0;
    g.for_each([&](const std::string&, const Tensor& t) {
        for (float x : t.span()) total += double(x) * double(x);
    });
    EXPECT_NEAR(global_grad_norm(g), std::sqrt(total), 1e-12 * std::sqrt(total));
    g.layers[0].wq[3] = std::nanf("");
    EXPECT_TRUE(std::isnan(global_grad_norm(g)));
    zero_grads(g);
    EXPECT_EQ(global_grad_norm(g), 0.0);
}

TEST(Train, ATinyModelOverfitsOneBatch) {
    const ModelConfig c = small_config();
    Weights w = init_weights(c, 3);
    auto device = make_device("cpu", 1);
    const auto tokens = test::phrase_tokens(4 * 9, 2);
    std::vector<std::int32_t> inputs, targets;
    for (int b = 0; b < 4; ++b)
        for (int t = 0; t < 8; ++t) {
            inputs.push_back(tokens[b * 9 + t]);
            targets.push_back(tokens[b * 9 + t + 1]);
        }
    Transformer model(w, *device, 4, VocabMap::identity(c.vocab));
    Weights grads = Weights::zeros(c);
    AdamMoments m = AdamMoments::zeros(c);
    double first = 0, loss = 0;
    for (int step = 1; step <= 300; ++step) {
        zero_grads(grads);
        model.forward(inputs.data(), 4, 8);
        loss = model.loss_and_dlogits(targets.data(), 1.0f);
        if (step == 1) first = loss;
        model.backward(grads);
        adamw_update(w, grads, m, step, 1e-2f, AdamWConfig{0.9f, 0.95f, 1e-8f, 0.0f});
        model.weights_changed();
    }
    EXPECT_NEAR(first, std::log(16.0), 0.1);
    EXPECT_LT(loss, 0.1);
}

TEST(Train, LossFallsAndCheckpointsAreWritten) {
    Fixture f;
    TrainOptions o = f.options("run.bin");
    o.steps = 40;
    o.lr = 2e-2f;
    std::vector<StepReport> reports;
    TrainCallbacks cb;
    cb.step = [&](const StepReport& r) { reports.push_back(r); };
    const TrainSummary s = train(o, cb, kNoStop);
    ASSERT_EQ(reports.size(), 40u);
    EXPECT_NEAR(reports.front().loss, std::log(double(s.compact_vocab)), 0.05);
    EXPECT_LT(reports.back().loss, reports.front().loss - 0.5);
    ASSERT_TRUE(s.last_val_loss.has_value());
    EXPECT_TRUE(reports[3].val_loss.has_value());
    EXPECT_LT(*s.last_val_loss, *reports[3].val_loss);
    const Checkpoint ck = read_blzt(o.output, {.load_moments = true});
    EXPECT_EQ(ck.state.step, 40);
    EXPECT_EQ(ck.state.adam_t, 40);
    EXPECT_TRUE(std::filesystem::exists(best_checkpoint_path(o.output)));
    EXPECT_EQ(ck.weights.config.residual_scale, small_config().residual_scale);
}

TEST(Train, ResumingContinuesBitForBit) {
    Fixture f;
    const TrainOptions whole = f.options("whole.bin");
    train(whole, {}, kNoStop);

    TrainOptions first = f.options("half.bin");
    first.stop_after = 6;
    const TrainSummary s1 = train(first, {}, kNoStop);
    EXPECT_EQ(s1.steps_done, 6);
    TrainOptions rest = f.options("half.bin");
    rest.config_path.clear();
    rest.resume = rest.output;
    const TrainSummary s2 = train(rest, {}, kNoStop);
    EXPECT_EQ(s2.steps_done, 6);

    const Checkpoint a = read_blzt(whole.output, {.load_moments = true});
    const Checkpoint b = read_blzt(rest.output, {.load_moments = true});
    EXPECT_TRUE(a.weights.bit_equal(b.weights));
    EXPECT_TRUE(a.adam->m.bit_equal(b.adam->m));
    EXPECT_TRUE(a.adam->v.bit_equal(b.adam->v));
    EXPECT_EQ(a.state.adam_t, b.state.adam_t);
    EXPECT_EQ(a.metadata["train"]["rng_state"], b.metadata["train"]["rng_state"]);
}

TEST(Train, MicroBatchEqualsAccumulation) {
    Fixture f;
    TrainOptions batched = f.options("batched.bin");
    batched.steps = 2;
    batched.eval_every = 0;
    TrainOptions accumulated = batched;
    accumulated.output = f.dir.path("accum.bin");
    accumulated.batch = 1;
    accumulated.accum = 4;
    train(batched, {}, kNoStop);
    train(accumulated, {}, kNoStop);
    const Checkpoint a = read_blzt(batched.output), b = read_blzt(accumulated.output);
    double worst = 0;
    Weights& wb = const_cast<Weights&>(b.weights);
    a.weights.for_each([&](const std::string& name, const Tensor& t) {
        const Tensor& u = *wb.find(name);
        for (std::int64_t i = 0; i < t.numel(); ++i) worst = std::max(worst, double(std::fabs(t[i] - u[i])));
    });
    EXPECT_LT(worst, 1e-5);
}

TEST(Train, NonFiniteGradientSkipsTheUpdate) {
    Fixture f;
    TrainOptions o = f.options("nan.bin");
    o.steps = 5;
    TrainCallbacks cb;
    std::vector<std::string> warnings;
    cb.warning = [&](const std::string& w) { warnings.push_back(w); };
    cb.gradients_ready = [](Weights& g, int step) {
        if (step == 2) g.layers[1].w2[3] = NAN;
    };
    const TrainSummary s = train(o, cb, kNoStop);
    EXPECT_EQ(s.skipped_updates, 1);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("step 3"), std::string::npos) << warnings[0];
    const Checkpoint ck = read_blzt(o.output, {.load_moments = true});
    EXPECT_EQ(ck.state.adam_t, 4);
    auto finite = [](const Weights& w) {
        bool ok = true;
        w.for_each([&](const std::string&, const Tensor& t) {
            for (float x : t.span()) ok = ok && std::isfinite(x);
        });
        return ok;
    };
    EXPECT_TRUE(finite(ck.weights));
    EXPECT_TRUE(finite(ck.adam->m));
    EXPECT_TRUE(finite(ck.adam->v));
}

TEST(Train, BadSetupsAreClearErrors) {
    Fixture f;
    TrainOptions o = f.options("x.bin");
    o.data = f.dir.path("missing.bin");
    EXPECT_THROW(train(o, {}, kNoStop), Error);
    o = f.options("x.bin");
    write_token_file(f.dir.path("big_ids.bin"), std::vector<std::uint16_t>(100, 40), TokenFormat::Raw);
    o.data = f.dir.path("big_ids.bin");
    try {
        train(o, {}, kNoStop);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
    }
    o = f.options("x.bin");
    write_token_file(f.dir.path("short.bin"), std::vector<std::uint16_t>(12, 1), TokenFormat::Raw);
    o.data = f.dir.path("short.bin");
    EXPECT_THROW(train(o, {}, kNoStop), Error);
}

namespace ane {
namespace {

// The report's shares of the step time: the optimizer counted once, the parts adding up to the
// whole (within the rounding of each to a whole percent).
TEST(Train, TheReportsTimeSharesAddUp) {
    TrainSummary s;
    s.steps_done = 10;
    s.step_seconds = 10.0;
    s.matmul_seconds = 5.0;
    s.attention_seconds = 1.5;
    s.elementwise_seconds = 1.0;
    s.optimizer_seconds = 2.0;
    s.tokens = 1000;
    const std::string report = efficiency_report(s, "m.bin", false);
    const auto at = report.find("time in steps: ");
    ASSERT_NE(at, std::string::npos) << report;
    const std::string line = report.substr(at, report.find('\n', at) - at);
    EXPECT_NE(line.find("optimizer 20%"), std::string::npos) << line;
    EXPECT_NE(line.find("other 5%"), std::string::npos) << line;
    int total = 0;
    for (std::size_t p = line.find('%'); p != std::string::npos; p = line.find('%', p + 1)) {
        std::size_t b = p;
        while (b > 0 && std::isdigit(static_cast<unsigned char>(line[b - 1]))) --b;
        total += std::stoi(line.substr(b, p - b));
    }
    EXPECT_NEAR(total, 100, 3) << line;
}

}  // namespace
}  // namespace ane
