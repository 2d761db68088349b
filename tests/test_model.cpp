#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "ane/device/attend_f16.hpp"
#include "ane/file_io.hpp"
#include "ane/half.hpp"
#include "ane/llama2c.hpp"
#include "ane/model/fast_math.hpp"
#include "ane/model/kernels.hpp"
#include "ane/model/decoder.hpp"
#include "ane/error.hpp"
#include "ane/model/transformer.hpp"
#include "ane/optim.hpp"
#include "ane/train/budget.hpp"
#include "ane/train/run_data.hpp"
#include "reference_model.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

std::vector<float> randn(std::size_t n, unsigned seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

double dot(const std::vector<float>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Central difference of f at x[i], in double.
template <typename F>
double central_difference(std::vector<double>& x, std::size_t i, F f, double h = 1e-5) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f();
    x[i] = keep - h;
    const double down = f();
    x[i] = keep;
    return (up - down) / (2 * h);
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rtol, const std::string& what) {
    double scale = 1e-6;
    for (double w : want) scale = std::max(scale, std::fabs(w));
    for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], rtol * scale) << what << " element " << i;
}

}  // namespace

TEST(Kernels, RmsNormForwardAndBackward) {
    const int T = 3, D = 7;
    const auto x = randn(T * D, 1), w = randn(D, 2), dy = randn(T * D, 3);
    std::vector<float> y(T * D), rstd(T), dx(T * D, 0.0f), dw(D, 0.0f);
    kernels::rmsnorm_forward(x.data(), w.data(), T, D, 1e-5f, y.data(), rstd.data());
    kernels::rmsnorm_backward(x.data(), w.data(), rstd.data(), dy.data(), T, D, dx.data(), dw.data());
    std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end());
    auto loss = [&]() {  // <dy, rmsnorm(x, w)>
        double s = 0;
        for (int t = 0; t < T; ++t) {
            double ss = 0;
            for (int i = 0; i < D; ++i) ss += xd[t * D + i] * xd[t * D + i];
            const double r = 1 / std::sqrt(ss / D + 1e-5);
            for (int i = 0; i < D; ++i) s += dy[t * D + i] * xd[t * D + i] * r * wd[i];
        }
        return s;
    };
    std::vector<double> y_ref(T * D), dx_ref(T * D), dw_ref(D);
    for (int t = 0; t < T; ++t) {
        double ss = 0;
        for (int i = 0; i < D; ++i) ss += xd[t * D + i] * xd[t * D + i];
        for (int i = 0; i < D; ++i) y_ref[t * D + i] = xd[t * D + i] / std::sqrt(ss / D + 1e-5) * wd[i];
    }
    for (int i = 0; i < T * D; ++i) dx_ref[i] = central_difference(xd, i, loss);
    for (int i = 0; i < D; ++i) dw_ref[i] = central_difference(wd, i, loss);
    expect_close(y, y_ref, 1e-6, "y");
    expect_close(dx, dx_ref, 1e-5, "dx");
    expect_close(dw, dw_ref, 1e-5, "dw");
}

TEST(Kernels, RopeMatchesTheReferenceAndItsBackwardIsTheTranspose) {
    const int S = 5, heads = 3, hd = 6, C = heads * hd, B = 2, T = B * S;
    std::vector<float> cos_t(S * hd / 2), sin_t(S * hd / 2);
    kernels::rope_tables(S, hd, 1e4, cos_t.data(), sin_t.data());
    auto x = randn(T * C, 4);
    auto y = x;
    kernels::rope_apply(y.data(), T, S, heads, hd, cos_t.data(), sin_t.data(), false);
    for (int b = 0; b < B; ++b) {
        test::Mat m(S, std::vector<double>(C));
        for (int t = 0; t < S; ++t)
            for (int c = 0; c < C; ++c) m[t][c] = x[(b * S + t) * C + c];
        test::ref_rope(m, heads, hd, 1e4);
        for (int t = 0; t < S; ++t)
            for (int c = 0; c < C; ++c) ASSERT_NEAR(y[(b * S + t) * C + c], m[t][c], 1e-5);
    }
    // <R x, d> == <x, R^T d> for the backward rotation.
    const auto d = randn(T * C, 5);
    auto rt_d = d;
    kernels::rope_apply(rt_d.data(), T, S, heads, hd, cos_t.data(), sin_t.data(), true);
    double lhs = 0, rhs = 0;
    for (int i = 0; i < T * C; ++i) {
        lhs += double(y[i]) * d[i];
        rhs += double(x[i]) * rt_d[i];
    }
    EXPECT_NEAR(lhs, rhs, 1e-4);
}

TEST(Kernels, SwigluBackwardMatchesFiniteDifferences) {
    const int n = 50;
    const auto h1 = randn(n, 6, 2.0f), h3 = randn(n, 7), dg = randn(n, 8);
    std::vector<float> g(n), dh1(n), dh3(n);
    kernels::swiglu_forward(h1.data(), h3.data(), n, g.data());
    kernels::swiglu_backward(h1.data(), h3.data(), dg.data(), n, dh1.data(), dh3.data());
    for (int i = 0; i < n; ++i) {
        const double a = h1[i], b = h3[i];
        const double sig = 1 / (1 + std::exp(-a));
        EXPECT_NEAR(g[i], a * sig * b, 1e-5);
        auto f = [&](double x, double y) { return x / (1 + std::exp(-x)) * y; };
        EXPECT_NEAR(dh1[i], dg[i] * (f(a + 1e-6, b) - f(a - 1e-6, b)) / 2e-6, 1e-4);
        EXPECT_NEAR(dh3[i], dg[i] * (f(a, b + 1e-6) - f(a, b - 1e-6)) / 2e-6, 1e-4);
    }
}

// S = 5 fits one block of query rows; S = 70 takes two (64 + 6), on each library.
void check_attention(int S, GemmLibrary library) {
    SCOPED_TRACE(std::string("S = ") + std::to_string(S) + ", " + gemm_library_name(library));
    const int B = S > 64 ? 1 : 2, nh = 4, nkv = 2, hd = 3, Cq = nh * hd, Ckv = nkv * hd, T = B * S;
    const auto q = randn(T * Cq, 9), k = randn(T * Ckv, 10), v = randn(T * Ckv, 11), dout = randn(T * Cq, 12);
    std::vector<float> o(T * Cq), probs(B * nh * S * S, 7.0f), dq(T * Cq), dk(T * Ckv, 5.0f), dv(T * Ckv, 5.0f);
    kernels::attention_forward(q.data(), k.data(), v.data(), B, S, nh, nkv, hd, o.data(), probs.data(), library);
    kernels::attention_backward(q.data(), k.data(), v.data(), probs.data(), dout.data(), B, S, nh, nkv, hd, dq.data(),
                                dk.data(), dv.data(), library);
    for (int bh = 0; bh < B * nh; ++bh)  // the masked scores are zero, each row sums to one
        for (int t = 0; t < S; ++t) {
            double sum = 0;
            for (int j = 0; j < S; ++j) {
                const float p = probs[(std::size_t(bh) * S + t) * S + j];
                if (j > t) {
                    ASSERT_EQ(p, 0.0f);
                }
                sum += p;
            }
            ASSERT_NEAR(sum, 1.0, 1e-5);
        }
    std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end());
    auto attend = [&]() {
        std::vector<double> out(T * Cq);
        for (int b = 0; b < B; ++b) {
            test::Mat Q(S, std::vector<double>(Cq)), K(S, std::vector<double>(Ckv)), V(S, std::vector<double>(Ckv));
            for (int t = 0; t < S; ++t) {
                for (int c = 0; c < Cq; ++c) Q[t][c] = qd[(b * S + t) * Cq + c];
                for (int c = 0; c < Ckv; ++c) K[t][c] = kd[(b * S + t) * Ckv + c], V[t][c] = vd[(b * S + t) * Ckv + c];
            }
            const auto O = test::ref_attention(Q, K, V, nh, nkv, hd);
            for (int t = 0; t < S; ++t)
                for (int c = 0; c < Cq; ++c) out[(b * S + t) * Cq + c] = O[t][c];
        }
        return out;
    };
    expect_close(o, attend(), 1e-5, "o");
    auto loss = [&]() { return dot(dout, attend()); };
    std::vector<double> dq_ref(qd.size()), dk_ref(kd.size()), dv_ref(vd.size());
    for (std::size_t i = 0; i < qd.size(); ++i) dq_ref[i] = central_difference(qd, i, loss);
    for (std::size_t i = 0; i < kd.size(); ++i) dk_ref[i] = central_difference(kd, i, loss);
    for (std::size_t i = 0; i < vd.size(); ++i) dv_ref[i] = central_difference(vd, i, loss);
    expect_close(dq, dq_ref, 1e-5, "dq");
    expect_close(dk, dk_ref, 1e-5, "dk");
    expect_close(dv, dv_ref, 1e-5, "dv");
}

TEST(Kernels, AttentionForwardAndBackwardWithGroupedHeads) {
    std::vector<GemmLibrary> libraries{GemmLibrary::blas};
    if (onednn_available()) libraries.push_back(GemmLibrary::onednn);
    for (const auto library : libraries)
        for (int S : {5, 70}) check_attention(S, library);
}

TEST(Kernels, CrossEntropyLossAndGradient) {
    const int T = 3, V = 6;
    auto z = randn(T * V, 13, 3.0f);
    const std::vector<std::int32_t> tgt = {0, 5, 2};
    std::vector<double> rows(T);
    kernels::cross_entropy_rows(z.data(), tgt.data(), T, V, rows.data());
    auto dz = z;
    const double loss = kernels::cross_entropy(dz.data(), tgt.data(), T, V, 2.0f);
    double mean = 0;
    for (int t = 0; t < T; ++t) {
        double mx = -1e300, sum = 0;
        for (int c = 0; c < V; ++c) mx = std::max(mx, double(z[t * V + c]));
        for (int c = 0; c < V; ++c) sum += std::exp(z[t * V + c] - mx);
        const double lt = std::log(sum) - (z[t * V + tgt[t]] - mx);
        EXPECT_NEAR(rows[t], lt, 1e-6);
        mean += lt / T;
        for (int c = 0; c < V; ++c)
            EXPECT_NEAR(dz[t * V + c], 2.0 * (std::exp(z[t * V + c] - mx) / sum - (c == tgt[t])) / T, 1e-6);
    }
    EXPECT_NEAR(loss, mean, 1e-5);
}

// A very confident row (logits spread over 200): the gradient still matches the double
// reference, and the tiny probabilities come out 0, never subnormal.
TEST(Kernels, CrossEntropyOfAConfidentRowHasNoSubnormals) {
    const int T = 64, V = 1000;
    std::vector<float> z(std::size_t(T) * V);
    for (int i = 0; i < T * V; ++i) z[std::size_t(i)] = -100.0f + float(i % 997) * 0.2f;  // -100 .. 99.2
    std::vector<std::int32_t> tgt(T);
    for (int t = 0; t < T; ++t) tgt[std::size_t(t)] = (t * 37) % V;
    auto dz = z;
    kernels::cross_entropy(dz.data(), tgt.data(), T, V, 1.0f);
    for (int t = 0; t < T; ++t) {
        const float* zr = z.data() + std::size_t(t) * V;
        double mx = -1e300, sum = 0;
        for (int c = 0; c < V; ++c) mx = std::max(mx, double(zr[c]));
        for (int c = 0; c < V; ++c) sum += std::exp(zr[c] - mx);
        for (int c = 0; c < V; ++c) {
            const float g = dz[std::size_t(t) * V + c];
            ASSERT_NE(std::fpclassify(g), FP_SUBNORMAL) << t << "," << c;
            ASSERT_NEAR(g, (std::exp(zr[c] - mx) / sum - (c == tgt[std::size_t(t)])) / T, 1e-7) << t << "," << c;
        }
    }
}

namespace {

// Gradients of the float model against central differences of the double reference, for
// every element of every parameter tensor.
// Llama 3's rope scaling on a head_dim of 8, so that its four frequencies fall in all three
// regimes: kept (wavelength 6), blended (94) and divided by the factor (1405, 21000).
ModelConfig llama3_rope_config(bool tied) {
    ModelConfig c = test::tiny_config(tied);
    c.head_dim = 8;
    c.rope_llama3 = {8.0, 1.0, 8.0, 256};
    return c;
}

// Qwen2's q/k/v biases and Qwen3's QK-norm on the tiny shapes.
ModelConfig family_config(bool bias, bool qk_norm) {
    ModelConfig c = test::tiny_config(false);
    c.attention_bias = bias;
    c.qk_norm = qk_norm;
    c.norm_eps = 1e-6;
    return c;
}

void check_model_gradients(const ModelConfig& c) {
    const bool tied = c.tied;
    Weights w = test::random_weights(c, 21);
    w.for_each([](const std::string& name, Tensor& t) {
        for (auto& x : t.span()) x *= is_norm_gain(name) ? 0.2f : 0.5f;
        if (is_norm_gain(name))
            for (auto& x : t.span()) x += 1.0f;
    });
    const int B = 2, S = 6;
    const std::vector<std::int32_t> inputs = {1, 4, 2, 9, 4, 0, 3, 3, 7, 1, 10, 2};
    const std::vector<std::int32_t> targets = {4, 2, 9, 4, 0, 3, 3, 7, 1, 10, 2, 4};
    // Compact vocabulary: the ids in the data; 5, 6 and 8 are absent.
    std::vector<std::uint16_t> present(inputs.begin(), inputs.end());
    present.insert(present.end(), targets.begin(), targets.end());
    const VocabMap map = VocabMap::build(present, c.vocab);
    ASSERT_EQ(map.compact_vocab(), 8);

    auto device = make_device("cpu", 1);
    Transformer model(w, *device, B, map);
    model.forward(inputs.data(), B, S);
    std::vector<std::int32_t> ctargets;
    for (int t : targets) ctargets.push_back(map.to_compact(t));
    const double loss = model.loss_and_dlogits(ctargets.data(), 1.0f);
    Weights grads = Weights::zeros(c);
    model.backward(grads);

    test::RefModel ref = test::to_ref(w);
    std::vector<std::vector<int>> in_seq(B), tgt_seq(B);
    for (int b = 0; b < B; ++b)
        for (int t = 0; t < S; ++t) {
            in_seq[b].push_back(inputs[b * S + t]);
            tgt_seq[b].push_back(targets[b * S + t]);
        }
    std::vector<int> classes(map.compact_to_full().begin(), map.compact_to_full().end());
    auto ref_loss = [&]() { return test::ref_loss(ref, in_seq, tgt_seq, classes); };
    EXPECT_NEAR(loss, ref_loss(), 1e-5);

    auto params = test::ref_params(ref);
    std::vector<std::pair<std::string, const Tensor*>> named;
    grads.for_each([&](const std::string& n, const Tensor& t) { named.emplace_back(n, &t); });
    ASSERT_EQ(named.size(), params.size());
    for (std::size_t p = 0; p < params.size(); ++p) {
        std::vector<double> fd(params[p]->size());
        for (std::size_t i = 0; i < fd.size(); ++i) fd[i] = central_difference(*params[p], i, ref_loss);
        const Tensor& g = *named[p].second;
        expect_close(std::vector<float>(g.data(), g.data() + g.numel()), fd, 2e-4,
                     named[p].first + (tied ? " (tied)" : " (untied)"));
    }
}

}  // namespace

// tiny_config: GQA 2, head_dim 4 != dim/heads 2, α 0.5.
TEST(Model, EveryGradientMatchesFiniteDifferencesTied) { check_model_gradients(test::tiny_config(true)); }
TEST(Model, EveryGradientMatchesFiniteDifferencesUntied) { check_model_gradients(test::tiny_config(false)); }
TEST(Model, Llama3RopeScalingGradientsMatchFiniteDifferences) { check_model_gradients(llama3_rope_config(false)); }
TEST(Model, Qwen2BiasGradientsMatchFiniteDifferences) { check_model_gradients(family_config(true, false)); }
TEST(Model, Qwen3QkNormGradientsMatchFiniteDifferences) { check_model_gradients(family_config(false, true)); }
TEST(Model, BiasAndQkNormTogetherGradientsMatchFiniteDifferences) { check_model_gradients(family_config(true, true)); }

TEST(Model, Llama3RopeScalingDividesTheLowFrequencies) {
    const ModelConfig c = llama3_rope_config(true);
    const auto d = c.rope_divisors();
    ASSERT_EQ(d.size(), 4u);
    EXPECT_EQ(d[0], 1.0);
    EXPECT_GT(d[1], 1.0);
    EXPECT_LT(d[1], 8.0);
    EXPECT_EQ(d[2], 8.0);
    EXPECT_EQ(d[3], 8.0);
    for (int i = 0; i < 4; ++i)  // the same frequencies as transformers' formula
        EXPECT_NEAR(1.0 / std::pow(c.rope_theta, 2.0 * i / 8) / d[std::size_t(i)],
                    test::ref_inv_freq(i, 8, c.rope_theta, c.rope_llama3), 1e-15);
    EXPECT_TRUE(test::tiny_config(true).rope_divisors().empty());
}

TEST(Model, AWindowTooLargeForMemoryIsRefusedBeforeAllocating) {
    const Weights w = test::random_weights(test::tiny_config(), 1);
    auto device = make_device("cpu", 1);
    try {
        Transformer model(w, *device, 8, VocabMap::identity(w.config.vocab), false, 1 << 20);
        FAIL() << "a window of 2^20 tokens needs terabytes of attention scores";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("windows of 1048576 tokens needs"), std::string::npos) << e.what();
    }
}

TEST(Model, ForwardMatchesTheDoubleReference) {
    for (const ModelConfig& c : {test::tiny_config(false), llama3_rope_config(false), family_config(true, false),
                                 family_config(false, true)}) {
        const Weights w = test::random_weights(c, 5);
        auto device = make_device("cpu", 2);
        Transformer model(w, *device, 1, VocabMap::identity(c.vocab));
        const std::vector<std::int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 1, 0, 7, 7, 3, 2};
        model.forward(tokens.data(), 1, int(tokens.size()));
        const auto z = test::ref_logits(test::to_ref(w), std::vector<int>(tokens.begin(), tokens.end()));
        for (std::size_t t = 0; t < tokens.size(); ++t)
            for (int v = 0; v < c.vocab; ++v)
                ASSERT_NEAR(model.logits()[t * c.vocab + v], z[t][v], 1e-4) << "rope scaling " << c.rope_llama3.factor;
    }
}

// llama2.c's run.c logits for stories260K after BOS and the first two greedy tokens.
TEST(Model, Stories260KLogitsMatchLlama2c) {
    const std::string model_path = test::shared_data("stories260K-llama2c/stories260K.bin");
    const std::string ref_path = test::shared_data("reference-outputs/stories260K_greedy_n200.json");
    ANE_REQUIRE_SHARED(model_path);
    ANE_REQUIRE_SHARED(ref_path);
    const Weights w = read_llama2c(model_path);
    const auto ref = nlohmann::json::parse(read_text_file(ref_path));
    const auto gen = ref["generated_token_ids"].get<std::vector<int>>();
    const std::vector<std::int32_t> tokens = {1, gen[0], gen[1]};
    auto device = make_device("cpu", 2);
    Transformer model(w, *device, 1, VocabMap::identity(w.config.vocab));
    model.forward(tokens.data(), 1, 3);
    for (int pos = 0; pos < 3; ++pos) {
        const auto& entry = ref["logits_by_position"][std::to_string(pos)];
        EXPECT_EQ(entry["input_token"].get<int>(), tokens[pos]);
        const auto want = entry["logits"].get<std::vector<double>>();
        ASSERT_EQ(int(want.size()), w.config.vocab);
        double worst = 0;
        for (int v = 0; v < w.config.vocab; ++v)
            worst = std::max(worst, std::fabs(model.logits()[pos * w.config.vocab + v] - want[v]));
        EXPECT_LT(worst, 1e-4) << "position " << pos;
    }
    // The greedy choices agree too.
    for (int pos = 0; pos < 2; ++pos) {
        const float* z = model.logits() + pos * w.config.vocab;
        EXPECT_EQ(int(std::max_element(z, z + w.config.vocab) - z), gen[pos]);
    }
}

TEST(Optim, ScheduleWarmsUpThenDecaysToTheFloor) {
    LrSchedule s{1e-3f, 10, 110, 0.1f};
    EXPECT_FLOAT_EQ(s.at(0), 1e-4f);
    EXPECT_FLOAT_EQ(s.at(9), 1e-3f);
    EXPECT_FLOAT_EQ(s.at(10), 1e-3f);
    EXPECT_NEAR(s.at(60), 0.55e-3f, 1e-9);
    EXPECT_FLOAT_EQ(s.at(110), 1e-4f);
    EXPECT_FLOAT_EQ(s.at(500), 1e-4f);
}

TEST(Optim, TimeScheduleWarmsUpByStepsThenFollowsTheClock) {
    LrSchedule s{1e-3f, 10, 0, 0.1f};
    EXPECT_FLOAT_EQ(s.at_fraction(0, 0.0), 1e-4f);           // warmup by updates
    EXPECT_FLOAT_EQ(s.at_fraction(20, 0.0), 1e-3f);          // the peak at the start of the budget
    EXPECT_NEAR(s.at_fraction(20, 0.5), 0.55e-3f, 1e-9);     // half the time: half-way down the cosine
    EXPECT_FLOAT_EQ(s.at_fraction(20, 1.0), 1e-4f);          // the floor when the time is spent
    EXPECT_FLOAT_EQ(s.at_fraction(20, 3.0), 1e-4f);
    EXPECT_FLOAT_EQ(s.at_fraction(5, 0.99), float(s.at_fraction(20, 0.99)));  // a long warmup never exceeds the cosine
}

TEST(Optim, RunBudgetEndsAtTheNearerLimit) {
    const RunBudget defaults = RunBudget::resolve(0, 0, 0);
    EXPECT_EQ(defaults.steps, kDefaultSteps);
    EXPECT_FALSE(defaults.by_time());
    const RunBudget time_only = RunBudget::resolve(0, 10.0, 0);
    EXPECT_TRUE(time_only.by_time());
    EXPECT_FALSE(time_only.done(1000000, 9.9, 1000000));  // no step limit with a time budget alone
    EXPECT_TRUE(time_only.done(1, 10.0, 1));
    const RunBudget both = RunBudget::resolve(50, 10.0, 0);
    EXPECT_TRUE(both.done(50, 1.0, 50));
    EXPECT_TRUE(both.done(3, 10.5, 3));
    EXPECT_TRUE(RunBudget::resolve(50, 0, 2).done(10, 0, 2));
    LrSchedule s{1e-3f, 0, 100, 0.1f};
    EXPECT_FLOAT_EQ(both.lr(s, 50, 0.0), s.at(50));
    EXPECT_FLOAT_EQ(time_only.lr(s, 50, 5.0), s.at_fraction(50, 0.5));
}

TEST(Optim, FineTuningKeepsTheContext) {
    EXPECT_EQ(resolve_run_shape(512, false, 128, std::nullopt).context, 512);
    EXPECT_EQ(resolve_run_shape(512, false, 128, std::nullopt).window, 128);
    EXPECT_EQ(resolve_run_shape(256, false, 1024, std::nullopt).context, 1024);  // grown to a longer window
    EXPECT_EQ(resolve_run_shape(512, true, 128, std::nullopt).context, 128);     // from scratch: the window
    EXPECT_EQ(resolve_run_shape(512, false, 128, 200).context, 200);             // asked for
    EXPECT_EQ(resolve_run_shape(512, false, std::nullopt, std::nullopt).window, 512);
}

TEST(Optim, AdamWMatchesTheFormulaAndSkipsDecayOnGains) {
    const ModelConfig c = test::tiny_config();
    Weights w = test::random_weights(c, 1), g = test::random_weights(c, 2);
    const Weights w0 = w;
    AdamMoments m = AdamMoments::zeros(c);
    AdamWConfig cfg;
    adamw_update(w, g, m, 1, 0.01f, cfg);
    // At t = 1: m̂ = g, v̂ = g², so the step is lr·(sign(g)·|g|/(|g|+eps) + wd·w).
    const float g0 = g.layers[0].wq[0], w00 = w0.layers[0].wq[0];
    EXPECT_NEAR(w.layers[0].wq[0], w00 - 0.01f * (g0 / (std::fabs(g0) + 1e-8f) + 0.1f * w00), 1e-6);
    const float r0 = g.layers[0].rms_att[0], rw = w0.layers[0].rms_att[0];
    EXPECT_NEAR(w.layers[0].rms_att[0], rw - 0.01f * r0 / (std::fabs(r0) + 1e-8f), 1e-6);
    EXPECT_NEAR(m.m.layers[0].wq[0], 0.1f * g0, 1e-7);
    EXPECT_NEAR(m.v.layers[0].wq[0], 0.05f * g0 * g0, 1e-7);
}

// Every element of a buffer larger than one thread's share and not a whole number of blocks,
// over three steps, against AdamW in double precision.
TEST(Optim, AdamWTensorMatchesADoubleReferenceOnEveryElement) {
    const std::int64_t n = 100003;
    std::mt19937 rng(5);
    std::normal_distribution<float> dist;
    std::vector<float> p(n), m(n, 0.0f), v(n, 0.0f);
    for (float& x : p) x = dist(rng);
    std::vector<double> pd(p.begin(), p.end()), md(n, 0.0), vd(n, 0.0);
    const AdamWConfig cfg;
    const float lr = 0.01f, wd = 0.1f, scale = 0.5f;
    for (int t = 1; t <= 3; ++t) {
        std::vector<float> g(n);
        for (float& x : g) x = dist(rng);
        adamw_tensor(p.data(), g.data(), m.data(), v.data(), n, t, lr, cfg, wd, scale);
        const double bc1 = 1 - std::pow(double(cfg.beta1), t), bc2 = 1 - std::pow(double(cfg.beta2), t);
        for (std::int64_t i = 0; i < n; ++i) {
            const double gi = double(g[i]) * scale;
            md[i] = cfg.beta1 * md[i] + (1 - double(cfg.beta1)) * gi;
            vd[i] = cfg.beta2 * vd[i] + (1 - double(cfg.beta2)) * gi * gi;
            pd[i] -= lr * ((md[i] / bc1) / (std::sqrt(vd[i] / bc2) + cfg.eps) + wd * pd[i]);
        }
    }
    double worst = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        worst = std::max(worst, std::fabs(double(p[i]) - pd[i]));
        ASSERT_NEAR(m[i], md[i], 1e-6 * (1 + std::fabs(md[i])));
        ASSERT_NEAR(v[i], vd[i], 1e-6 * (1 + vd[i]));
    }
    EXPECT_LT(worst, 1e-5);  // three steps of lr 0.01 move each weight ~0.03
}

TEST(Kernels, FastExpIsAccurateOverTheFloatRange) {
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.001237f) {
        const double want = std::exp(double(x));
        worst = std::max(worst, std::fabs(double(fast_exp(x)) - want) / want);
    }
    EXPECT_LT(worst, 5e-7);
    EXPECT_EQ(fast_exp(-200.0f), fast_exp(-87.33f));
    EXPECT_LT(fast_exp(-200.0f), 1e-37f);
    EXPECT_EQ(fast_exp(0.0f), 1.0f);
    EXPECT_EQ(fast_exp(200.0f), fast_exp(88.72f));
    // A NaN (a diverged model's logits) stays NaN, without an undefined float-to-int conversion.
    EXPECT_TRUE(std::isnan(fast_exp(std::nanf(""))));
}

// The cached decode path and the full-window forward give the same logits at every position,
// whether the tokens come one at a time or in chunks.
TEST(Decoder, KvCacheMatchesTheFullForward) {
    for (const ModelConfig& c : {test::tiny_config(true), test::tiny_config(false), llama3_rope_config(true),
                                 family_config(true, false), family_config(false, true)}) {
        const Weights w = test::random_weights(c, 31);
        const std::vector<std::int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7};
        auto dev = make_device("cpu", 2);
        Transformer full(w, *dev, 1, VocabMap::identity(c.vocab));
        full.forward(tokens.data(), 1, int(tokens.size()));
        Decoder one(w, *dev, c.seq);
        for (std::size_t t = 0; t < tokens.size(); ++t) {
            const float* z = one.feed(&tokens[t], 1);
            for (int v = 0; v < c.vocab; ++v) ASSERT_NEAR(z[v], full.logits()[t * c.vocab + v], 1e-4) << t;
        }
        Decoder chunks(w, *dev, c.seq, 4);  // a prompt of 5 in chunks of 4, then single tokens
        std::vector<float> all;
        chunks.feed(tokens.data(), 5, &all);
        for (int t = 0; t < 5; ++t)
            for (int v = 0; v < c.vocab; ++v) ASSERT_NEAR(all[std::size_t(t) * c.vocab + v], full.logits()[t * c.vocab + v], 1e-4);
        for (std::size_t t = 5; t < tokens.size(); ++t) {
            const float* z = chunks.feed(&tokens[t], 1);
            for (int v = 0; v < c.vocab; ++v) ASSERT_NEAR(z[v], full.logits()[t * c.vocab + v], 1e-4) << t;
        }
        EXPECT_EQ(chunks.position(), int(tokens.size()));
        Decoder small(w, *dev, 4);
        small.feed(tokens.data(), 4);
        EXPECT_THROW(small.feed(tokens.data(), 1), Error);
    }
}

// An fp16 cache (ane-generate's default, as llama.cpp's) rounds each cached key and value to
// 11 significant bits (checked by hand: rounding them so in the float32 path gives these logits
// bit for bit): the logits stay near the float32 cache's (0.03-0.5% relative RMS on these random
// models), in chunks, one token at a time and for two sequences decoded side by side.
TEST(Decoder, AnFp16CacheTracksTheFloat32Cache) {
    for (const ModelConfig& c : {test::tiny_config(true), family_config(true, false), family_config(false, true)}) {
        const Weights w = test::random_weights(c, 37);
        const std::vector<std::int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7};
        auto dev = make_device("cpu", 2);
        const InferenceWeights iw = InferenceWeights::view(w);
        Decoder f32(iw, *dev, c.seq, 4, 2, KvCache::f32), f16(iw, *dev, c.seq, 4, 2, KvCache::f16);
        std::vector<float> a, b;
        f32.feed(tokens.data(), 6, &a);
        f16.feed(tokens.data(), 6, &b);
        double err2 = 0, norm2 = 0;
        auto compare = [&](const float* x, const float* y, int n) {
            for (int v = 0; v < n; ++v) {
                err2 += (double(y[v]) - x[v]) * (double(y[v]) - x[v]);
                norm2 += double(x[v]) * x[v];
            }
        };
        compare(a.data(), b.data(), int(a.size()));
        for (std::size_t t = 6; t < tokens.size(); ++t) {
            const float* z = f32.feed(&tokens[t], 1);
            const std::vector<float> x(z, z + c.vocab);
            compare(x.data(), f16.feed(&tokens[t], 1), c.vocab);
        }
        // Two sequences of different lengths, then one token of each per step.
        Decoder g32(iw, *dev, c.seq, 4, 2, KvCache::f32), g16(iw, *dev, c.seq, 4, 2, KvCache::f16);
        for (Decoder* d : {&g32, &g16}) {
            d->feed(tokens.data(), 5, nullptr, 0);
            d->feed(tokens.data() + 5, 2, nullptr, 1);
        }
        for (std::size_t t = 0; t < 9; ++t) {
            const std::int32_t pair[2] = {tokens[t], tokens[tokens.size() - 1 - t]};
            const int seqs[2] = {0, 1};
            const float* z = g32.feed_batch(pair, seqs, 2);
            const std::vector<float> x(z, z + 2 * c.vocab);
            compare(x.data(), g16.feed_batch(pair, seqs, 2), 2 * c.vocab);
        }
        // Relative RMS difference: a cache read from the wrong place would differ by order 1.
        const double rms = std::sqrt(err2 / norm2);
        EXPECT_LT(rms, 1e-2);
        EXPECT_GT(rms, 0.0) << "the fp16 cache gave the float32 cache's logits exactly";
    }
    EXPECT_EQ(parse_kv_cache("f16"), KvCache::f16);
    EXPECT_THROW(parse_kv_cache("q8_0"), UsageError);
}

// One decoded query's attention (keys and values four at a time) against the softmax and the
// weighted sum in double precision, for spans and head sizes that leave every remainder.
TEST(Kernels, AttendOneMatchesADoubleReference) {
    std::mt19937 rng(17);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int hd : {8, 17, 64, 128})
        for (int span : {1, 3, 4, 5, 17, 64, 130}) {
            const int stride = hd + 5;
            std::vector<float> q(static_cast<std::size_t>(hd)), k(static_cast<std::size_t>(span) * stride), v(k.size());
            for (auto* a : {&q, &k, &v})
                for (float& x : *a) x = normal(rng);
            const float scale = 1.0f / std::sqrt(float(hd));
            std::vector<float> p(static_cast<std::size_t>(span)), out(static_cast<std::size_t>(hd));
            kernels::attend_one(q.data(), k.data(), v.data(), stride, span, hd, scale, p.data(), out.data());
            std::vector<double> w(static_cast<std::size_t>(span));
            double mx = -1e300, sum = 0;
            for (int j = 0; j < span; ++j) {
                double dot = 0;
                for (int d = 0; d < hd; ++d) dot += double(q[d]) * k[std::size_t(j) * stride + d];
                w[j] = dot * scale;
                mx = std::max(mx, w[j]);
            }
            for (double& x : w) sum += (x = std::exp(x - mx));
            for (int j = 0; j < span; ++j) ASSERT_NEAR(p[j], w[j] / sum, 1e-6) << "hd " << hd << " span " << span;
            for (int d = 0; d < hd; ++d) {
                double want = 0;
                for (int j = 0; j < span; ++j) want += w[j] / sum * v[std::size_t(j) * stride + d];
                ASSERT_NEAR(out[d], want, 1e-5 * (1 + std::fabs(want)))
                    << "hd " << hd << " span " << span << " d " << d;
            }
        }
}

// The fp16 cache's kernel, on every instruction set this CPU has, against double precision on
// the same fp16 keys and values: head sizes of whole vectors (one or several sweeps over the
// values) and not (the portable kernel), spans around the four-key and two-key steps.
TEST(Kernels, AttendOneF16MatchesADoubleReference) {
    std::vector<MatvecIsa> isas{MatvecIsa::portable};
    if (best_matvec_isa() != MatvecIsa::portable) isas.push_back(MatvecIsa::avx2);
    if (best_matvec_isa() == MatvecIsa::avx512) isas.push_back(MatvecIsa::avx512);
    std::mt19937 rng(19);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (MatvecIsa isa : isas)
        for (int hd : {8, 20, 48, 64, 80, 128, 256})
            for (int span : {1, 2, 3, 4, 5, 7, 17, 130}) {
                std::vector<float> q(static_cast<std::size_t>(hd));
                std::vector<std::uint16_t> k(static_cast<std::size_t>(span) * hd), v(k.size());
                for (float& x : q) x = normal(rng);
                for (auto* a : {&k, &v})
                    for (auto& h : *a) h = float_to_fp16(normal(rng));
                const float scale = 1.0f / std::sqrt(float(hd));
                std::vector<float> p(static_cast<std::size_t>(span)), out(static_cast<std::size_t>(hd), -7.0f);
                attend_one_f16(isa, q.data(), k.data(), v.data(), span, hd, scale, p.data(), out.data());
                std::vector<double> w(static_cast<std::size_t>(span));
                double mx = -1e300, sum = 0;
                for (int j = 0; j < span; ++j) {
                    double dot = 0;
                    for (int d = 0; d < hd; ++d) dot += double(q[d]) * fp16_to_float(k[std::size_t(j) * hd + d]);
                    w[j] = dot * scale;
                    mx = std::max(mx, w[j]);
                }
                for (double& x : w) sum += (x = std::exp(x - mx));
                for (int d = 0; d < hd; ++d) {
                    double want = 0;
                    for (int j = 0; j < span; ++j) want += w[j] / sum * fp16_to_float(v[std::size_t(j) * hd + d]);
                    ASSERT_NEAR(out[d], want, 1e-5 * (1 + std::fabs(want)))
                        << matvec_isa_name(isa) << " hd " << hd << " span " << span << " d " << d;
                }
            }
}

TEST(Kernels, MaxOfFindsTheLargestWhereverItIs) {
    EXPECT_EQ(max_of(nullptr, 0), -INFINITY);
    for (int n : {1, 15, 16, 17, 33, 100})
        for (int at = 0; at < n; at += 7) {
            std::vector<float> x(static_cast<std::size_t>(n));
            for (int i = 0; i < n; ++i) x[i] = -1000.0f - float(i);
            x[at] = -3.5f;
            EXPECT_EQ(max_of(x.data(), n), -3.5f) << "n " << n << " at " << at;
        }
}
