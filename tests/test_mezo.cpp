// MeZO: the spec's random-number and perturbation vectors, exact restores, the SPSA estimate
// against true gradients, and the perturbation order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <random>

#include "ane/device/cpu_device.hpp"
#include "ane/device/gemm.hpp"
#include "ane/mezo/mezo_trainer.hpp"
#include "ane/mezo/perturbed_weights.hpp"
#include "ane/mezo/spsa.hpp"
#include "ane/mezo/xoshiro.hpp"
#include "ane/mezo/xoshiro_jump.hpp"
#include "ane/model/transformer.hpp"
#include "ane/sampling.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

TEST(Xoshiro, SpecSeedAndOutputs) {
    Xoshiro256Plus rng(42);
    EXPECT_EQ(rng.state()[0], 0xbdd732262feb6e95ull);
    EXPECT_EQ(rng.state()[1], 0x28efe333b266f103ull);
    EXPECT_EQ(rng.state()[2], 0x47526757130f9f52ull);
    EXPECT_EQ(rng.state()[3], 0x581ce1ff0e4ae394ull);
    EXPECT_EQ(rng.next(), 0x15f414253e365229ull);
    EXPECT_EQ(rng.next(), 0x4f771f08f4211387ull);
    EXPECT_EQ(rng.next(), 0x100492bd8828891eull);
    EXPECT_EQ(rng.next(), 0x4e743fce495374aeull);
    EXPECT_EQ(mezo_step_seed(42, 1), 1000045u);
    EXPECT_EQ(Xoshiro256Plus(mezo_step_seed(42, 1)).next(), 0x8d1d4dd15e23476aull);
}

TEST(Perturb, RademacherSpecVector) {
    const float c = 0.25f;
    std::vector<float> buf(8, 0.0f);
    perturb({{"buf", buf.data(), 8, true}}, 42, c, Direction::Rademacher);
    EXPECT_EQ(buf, (std::vector<float>{c, -c, -c, c, c, c, c, -c}));
    // Leftovers take one whole draw each (bit 0), and a new buffer starts a new group.
    std::vector<float> six(6, 0.0f), one(1, 0.0f);
    perturb({{"six", six.data(), 6, true}, {"one", one.data(), 1, true}}, 42, c, Direction::Rademacher);
    Xoshiro256Plus rng(42);
    const std::uint64_t r0 = rng.next(), r1 = rng.next(), r2 = rng.next(), r3 = rng.next();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(six[i], ((r0 >> i) & 1) ? c : -c) << i;
    EXPECT_EQ(six[4], (r1 & 1) ? c : -c);
    EXPECT_EQ(six[5], (r2 & 1) ? c : -c);
    EXPECT_EQ(one[0], (r3 & 1) ? c : -c);
}

TEST(Perturb, GaussianPairsAndOddTail) {
    std::vector<float> buf(3, 0.0f);
    perturb({{"buf", buf.data(), 3, true}}, 7, 2.0f, Direction::Gaussian);
    Xoshiro256Plus rng(7);
    auto [z0, z1] = rng.gaussian_pair();
    auto [z2, unused] = rng.gaussian_pair();
    (void)unused;
    EXPECT_EQ(buf, (std::vector<float>{2.0f * z0, 2.0f * z1, 2.0f * z2}));
    // Box-Muller from the spec's formula, by hand for the first pair.
    Xoshiro256Plus again(7);
    const double u1 = (double(again.next() >> 11) + 0.5) / 9007199254740992.0;
    const double u2 = (double(again.next() >> 11) + 0.5) / 9007199254740992.0;
    EXPECT_EQ(z0, float(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2)));
}

// A jump of k draws lands where k calls of next() land, for small and large k (the
// threads of a sweep each start their part of one stream this way).
TEST(Xoshiro, JumpAheadEqualsDrawing) {
    for (std::uint64_t seed : {1ull, 42ull, 0x9e3779b97f4a7c15ull}) {
        Xoshiro256Plus walked(seed);
        std::uint64_t at = 0;
        for (std::uint64_t k : {0ull, 1ull, 2ull, 255ull, 256ull, 257ull, 1000ull, 65537ull, 1234567ull}) {
            while (at < k) {
                walked.next();
                ++at;
            }
            Xoshiro256Plus jumped(seed);
            jump_ahead(jumped, k);
            for (int w = 0; w < 4; ++w) ASSERT_EQ(jumped.state()[w], walked.state()[w]) << "seed " << seed << ", k " << k;
            EXPECT_EQ(jumped.next(), Xoshiro256Plus(walked).next());
        }
    }
}

// The drawn-once direction against the sequential sweeps it replaces: every sweep, and the
// fused restore-and-update (with and without a snapshot, decay, a skipped update), equal bit
// for bit. Buffer sizes that are not multiples of 4 put the later buffers off the nibble grid,
// and two buffers are large enough to be drawn and shared out in parts across threads, one off
// the grid and one on it but not on a word (its whole words drawn eight stretches at a time).
TEST(Perturb, StepDirectionEqualsTheSequentialSweeps) {
    for (Direction d : {Direction::Rademacher, Direction::Gaussian}) {
        // (Gaussian z is redrawn sequentially: no parts, a smaller buffer will do.)
        const std::int64_t large = d == Direction::Rademacher ? (1 << 21) + 300001 : 300001;
        const std::vector<std::int64_t> sizes = {36, large, 6, large, 5, 64, 1};
        std::vector<std::vector<float>> a, b;
        for (std::int64_t n : sizes) {
            std::vector<float> v(static_cast<std::size_t>(n));
            for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.01f * float(std::sin(double(i) + double(n)));
            a.push_back(v);
            b.push_back(v);
        }
        auto spans = [&](std::vector<std::vector<float>>& bufs) {
            std::vector<ParamSpan> out;
            for (std::size_t k = 0; k < bufs.size(); ++k)
                out.push_back({std::to_string(k), bufs[k].data(), std::int64_t(bufs[k].size()), k % 2 == 0});
            return out;
        };
        const auto pa = spans(a), pb = spans(b);
        const float eps = 1e-3f, coeff = -2.5e-4f, wd = 1e-5f;
        for (int variant = 0; variant < 3; ++variant) {
            const std::uint64_t seed = 77 + std::uint64_t(variant);
            ParamSnapshot saved;
            saved.save(pa);
            // The sequential sweeps: +ε, −2ε, restore, update.
            perturb(pa, seed, eps, d);
            perturb(pa, seed, -2 * eps, d);
            if (variant == 0) {
                perturb(pa, seed, eps, d);
                zo_update(pa, seed, coeff, d, wd);
            } else if (variant == 1) {
                saved.restore(pa);
                zo_update(pa, seed, coeff, d, 0.0f);
            } else {
                saved.restore(pa);  // a skipped update
            }
            StepDirection z;
            ParamSnapshot mine;  // filled by the first sweep
            z.draw(pb, seed, d);
            z.apply(eps, variant == 0 ? nullptr : mine.prepare(pb));
            z.apply(-2 * eps);
            if (variant == 0) z.restore_and_update(eps, coeff, wd);
            if (variant == 1) z.update_from(mine.data(), coeff, 0.0f);
            if (variant == 2) z.update_from(mine.data(), 0.0f, 0.0f);
            for (std::size_t k = 0; k < a.size(); ++k)
                ASSERT_EQ(std::memcmp(a[k].data(), b[k].data(), a[k].size() * sizeof(float)), 0)
                    << "buffer " << k << ", variant " << variant << (d == Direction::Gaussian ? ", gaussian" : "");
        }
    }
}

// train_mezo's four sweeps a step (+ε, −2ε, the arithmetic restore, the update) against the
// in-place steps whose restore and update are deferred into the next step's +ε sweep: the same
// losses and the same floats after every flush, with weight decay, without, and a skipped update.
TEST(Spsa, InPlaceStepsWithDeferredRestoresAreTrainMezosSweeps) {
    const std::int64_t large = (1 << 21) + 300001;  // parts drawn on several threads
    const std::vector<std::int64_t> sizes = {36, large, 6, 5, 64, 1};
    std::vector<std::vector<float>> a, b;
    for (std::int64_t n : sizes) {
        std::vector<float> v(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.01f * float(std::sin(double(i) + double(n)));
        a.push_back(v);
        b.push_back(v);
    }
    auto spans = [](std::vector<std::vector<float>>& bufs) {
        std::vector<ParamSpan> out;
        for (std::size_t k = 0; k < bufs.size(); ++k)
            out.push_back({std::to_string(k), bufs[k].data(), std::int64_t(bufs[k].size()), k % 2 == 0});
        return out;
    };
    const auto pa = spans(a), pb = spans(b);
    // A loss that reads every buffer: a weighted sum, in double.
    const auto loss_of = [](const std::vector<std::vector<float>>& bufs) {
        double l = 0;
        for (const auto& v : bufs)
            for (std::size_t i = 0; i < v.size(); i += 7) l += double(v[i]) * double(i % 13 + 1);
        return l;
    };
    const float eps = 1e-3f;
    const ZoUpdate updates[] = {{-2.5e-4f, 1e-5f}, {3e-4f, 0.0f}, {}, {-1e-4f, 2e-5f}};
    PerturbedWeights weights;
    int syncs = 0;
    const SpsaHooks hooks{[&] { return loss_of(b); }, [&] { ++syncs; }, nullptr};
    const SpsaHooks sequential{[&] { return loss_of(a); }, [] {}, nullptr};
    for (int step = 0; step < 4; ++step) {
        const std::uint64_t seed = mezo_step_seed(42, step);
        const SpsaEstimate ea = spsa_two_sided(pa, seed, eps, Direction::Rademacher, sequential);
        zo_update(pa, seed, updates[step].coeff, Direction::Rademacher, updates[step].lr_times_wd);
        const SpsaEstimate eb = spsa_two_sided_in_place(pb, seed, eps, hooks, weights,
                                                        [&](const SpsaEstimate&) { return updates[step]; });
        EXPECT_EQ(ea.loss_plus, eb.loss_plus) << "step " << step;
        EXPECT_EQ(ea.loss_minus, eb.loss_minus) << "step " << step;
        EXPECT_EQ(syncs, 2 * (step + 1)) << "a sync after each of the step's two sweeps";
        if (step != 1) {
            EXPECT_NE(std::memcmp(a[1].data(), b[1].data(), a[1].size() * sizeof(float)), 0)
                << "θ − εz until the deferred restore";
            continue;
        }
        EXPECT_TRUE(weights.flush());  // as before an evaluation or a save in the middle of a run
        EXPECT_FALSE(weights.flush());
        for (std::size_t k = 0; k < a.size(); ++k)
            ASSERT_EQ(std::memcmp(a[k].data(), b[k].data(), a[k].size() * sizeof(float)), 0)
                << "buffer " << k << " after step " << step;
    }
    EXPECT_TRUE(weights.flush());
    for (std::size_t k = 0; k < a.size(); ++k)
        ASSERT_EQ(std::memcmp(a[k].data(), b[k].data(), a[k].size() * sizeof(float)), 0) << "buffer " << k;
}

TEST(Sampling, MezoSpecWindows) {
    EXPECT_EQ(mezo_window_offset(42, 0, 18000000, 256), 13401258u);
    EXPECT_EQ(mezo_window_offset(42, 1, 18000000, 256), 11303970u);
    const auto val = mezo_validation_offsets(18000000, 2000000, 256, 2);
    EXPECT_EQ(val, (std::vector<std::size_t>{18204642, 19271388}));
    EXPECT_EQ(mezo_window_offsets(42, 1, 18000000, 256, 3)[0], 11303970u);
}

std::vector<float> flatten(const std::vector<ParamSpan>& params) {
    std::vector<float> out;
    for (const auto& p : params) out.insert(out.end(), p.data, p.data + p.size);
    return out;
}

TEST(Spsa, PerturbPlusMinusRestoreIsBitIdentical) {
    const ModelConfig c = test::tiny_config(false);
    Weights w = test::random_weights(c, 3);
    const Weights before = w;
    const auto params = mezo_parameters(w, nullptr);
    ParamSnapshot snapshot;
    int losses = 0;
    const SpsaHooks hooks{[&] { return double(++losses); }, [] {}, &snapshot};
    for (std::uint64_t seed : {1ull, 42ull, 1000045ull}) {
        const SpsaEstimate e = spsa_two_sided(params, seed, 1e-3f, Direction::Rademacher, hooks);
        EXPECT_NE(e.loss_plus, e.loss_minus);
        EXPECT_TRUE(w.bit_equal(before)) << "seed " << seed;
        spsa_one_sided(params, seed, 3, 1e-3f, Direction::Gaussian, 0.0, hooks);
        EXPECT_TRUE(w.bit_equal(before)) << "seed " << seed;
    }
    // train_mezo's arithmetic restore (no snapshot) returns θ only up to float rounding.
    const SpsaHooks arithmetic{[] { return 0.0; }, [] {}, nullptr};
    spsa_two_sided(params, 5, 1e-3f, Direction::Rademacher, arithmetic);
    const auto after = flatten(params);
    Weights copy = before;
    const auto orig = flatten(mezo_parameters(copy, nullptr));
    for (std::size_t i = 0; i < orig.size(); ++i) ASSERT_NEAR(after[i], orig[i], 4e-7 + 1e-6 * std::fabs(orig[i]));
}

// The direction z of a seed over a set of sizes, by perturbing zeros by 1.
std::vector<float> direction_of(const std::vector<ParamSpan>& params, std::uint64_t seed, Direction d) {
    std::vector<float> z(std::size_t(total_size(params)), 0.0f);
    std::vector<ParamSpan> zs;
    std::int64_t at = 0;
    for (const auto& p : params) {
        zs.push_back({p.name, z.data() + at, p.size, p.decay});
        at += p.size;
    }
    perturb(zs, seed, 1.0f, d);
    return z;
}

void check_quadratic(Direction d, double fourth_moment) {
    const int n = 37;  // not a multiple of 4: leftovers too
    std::vector<float> theta(n), a(n);
    for (int i = 0; i < n; ++i) {
        theta[i] = 0.3f * float(std::sin(1.7 * i));
        a[i] = 0.5f + 0.05f * float(i);
    }
    std::vector<double> grad(n);
    double grad_sq = 0;
    for (int i = 0; i < n; ++i) grad_sq += (grad[i] = double(a[i]) * theta[i]) * grad[i];
    const std::vector<ParamSpan> params = {{"x", theta.data(), 20, true}, {"y", theta.data() + 20, n - 20, true}};
    ParamSnapshot snapshot;
    auto loss = [&] {
        double l = 0;
        for (int i = 0; i < n; ++i) l += 0.5 * a[i] * double(theta[i]) * theta[i];
        return l;
    };
    const SpsaHooks hooks{loss, [] {}, &snapshot};
    const int N = 20000;
    std::vector<double> mean(n, 0.0);
    for (int s = 0; s < N; ++s) {
        const auto z = direction_of(params, std::uint64_t(s), d);
        const SpsaEstimate e = spsa_two_sided(params, std::uint64_t(s), 1e-3f, d, hooks);
        double proj = 0;
        for (int i = 0; i < n; ++i) proj += grad[i] * z[i];
        // Central differences are exact on a quadratic: only float rounding of θ ± εz remains.
        ASSERT_NEAR(e.proj_grad, proj, 2e-3 * (1 + std::fabs(proj))) << "seed " << s;
        for (int i = 0; i < n; ++i) mean[i] += e.proj_grad * z[i] / N;
    }
    // E[(g·z) z] = g; each coordinate's standard error is sqrt((|g|² + (m4 − 2) g_i²) / N).
    for (int i = 0; i < n; ++i) {
        const double se = std::sqrt((grad_sq + (fourth_moment - 2.0) * grad[i] * grad[i]) / N);
        EXPECT_NEAR(mean[i], grad[i], 5 * se) << "coordinate " << i;
    }
}

TEST(Spsa, QuadraticEstimateIsUnbiasedRademacher) { check_quadratic(Direction::Rademacher, 1.0); }
TEST(Spsa, QuadraticEstimateIsUnbiasedGaussian) { check_quadratic(Direction::Gaussian, 3.0); }

TEST(Spsa, TinyModelEstimateMatchesBackprop) {
    const ModelConfig c = test::tiny_config(true);
    Weights w = test::random_weights(c, 9);
    w.for_each([](const std::string& name, Tensor& t) {  // a smooth model: gains near 1, small weights
        const bool gain = name.find("rms") != std::string::npos;
        for (auto& x : t.span()) x = gain ? 1.0f + 0.1f * x : 0.3f * x;
    });
    const int B = 2, S = 8;
    std::vector<std::int32_t> inputs(B * S), targets(B * S);
    for (int i = 0; i < B * S; ++i) {
        inputs[i] = (i * 7 + 3) % c.vocab;
        targets[i] = (i * 5 + 1) % c.vocab;
    }
    auto device = make_device("cpu", 1);
    Transformer model(w, *device, B, VocabMap::identity(c.vocab));
    model.forward(inputs.data(), B, S);
    model.loss_and_dlogits(targets.data(), 1.0f);
    Weights grads = Weights::zeros(c);
    model.backward(grads);
    const auto params = mezo_parameters(w, nullptr);
    std::vector<double> g;
    for (const auto& p : params) {
        const Tensor& t = *grads.find(p.name);
        g.insert(g.end(), t.data(), t.data() + t.numel());
    }
    double g_sq = 0;
    for (double x : g) g_sq += x * x;

    ParamSnapshot snapshot;
    auto loss = [&] {
        model.forward(inputs.data(), B, S);
        return model.loss_and_dlogits(targets.data(), 1.0f);
    };
    const SpsaHooks hooks{loss, [&] { model.weights_changed(); }, &snapshot};
    const int N = 400;
    double along_g = 0;  // mean of (g·z)·ĝ... projected onto g: E = |g|²
    for (int s = 0; s < N; ++s) {
        const auto z = direction_of(params, std::uint64_t(s), Direction::Rademacher);
        double proj = 0;
        for (std::size_t i = 0; i < g.size(); ++i) proj += g[i] * z[i];
        const SpsaEstimate e = spsa_two_sided(params, std::uint64_t(s), 1e-3f, Direction::Rademacher, hooks);
        EXPECT_NEAR(e.proj_grad, proj, 0.02 * std::sqrt(g_sq) + 0.02 * std::fabs(proj)) << "seed " << s;
        along_g += e.proj_grad * proj / N;
    }
    // E[(g·z)²] = |g|² for Rademacher z; with N samples the relative standard error is ~sqrt(2/N).
    EXPECT_NEAR(along_g / g_sq, 1.0, 5 * std::sqrt(2.0 / N));
}

// The libraries a viewed forward runs its products on: OpenBLAS makes each weight whole (the
// same product as in place, bit for bit), oneDNN in panels of rows (the same floats, summed
// in another order).
std::vector<std::string> viewed_gemms() {
    std::vector<std::string> gemms{"openblas"};
    if (onednn_available()) gemms.push_back("onednn");
    return gemms;
}

// The forward through PerturbedWeights reads θ + c·z as the forward after θ += c·z in place
// (every logit bit for bit on OpenBLAS, to float rounding in oneDNN's panels: tied and untied
// classifiers, the compact vocabulary's rows, q/k/v biases and QK-norm gains), and leaves θ
// as it was.
TEST(Spsa, ViewedPerturbationReadsWhatAnInPlaceOneWrites) {
    for (const std::string& gemm : viewed_gemms())
    for (int variant = 0; variant < 3; ++variant) {
        ModelConfig c = test::tiny_config(variant != 1);
        if (variant == 2) c.attention_bias = c.qk_norm = true;
        Weights w = test::random_weights(c, 11);
        Weights before = w;
        auto restore = [&] {  // in place: the model and the spans point into w's tensors
            w.for_each([&](const std::string& name, Tensor& t) {
                std::memcpy(t.data(), before.find(name)->data(), t.bytes());
            });
        };
        const int B = 2, S = 6;
        std::vector<std::int32_t> inputs(B * S);
        for (int i = 0; i < B * S; ++i) inputs[std::size_t(i)] = (i * 7 + 3) % (c.vocab / 2);  // half the vocabulary
        std::vector<std::uint16_t> present(inputs.begin(), inputs.end());
        const VocabMap map = variant == 1 ? VocabMap::build(present, c.vocab) : VocabMap::identity(c.vocab);
        auto device = make_device("cpu", device_options(2, "full", gemm));
        Transformer model(w, *device, B, map, /*for_training=*/false);
        const auto params = mezo_parameters(w, nullptr);
        PerturbedWeights viewed;
        viewed.draw(params, 1234);
        const std::int64_t n = std::int64_t(B) * S * map.compact_vocab();
        for (float eps : {1e-3f, -1e-3f}) {
            model.set_weight_source(&viewed);
            viewed.set_scale(eps);
            model.forward(inputs.data(), B, S);
            const std::vector<float> through(model.logits(), model.logits() + n);
            model.set_weight_source(nullptr);
            EXPECT_TRUE(w.bit_equal(before)) << "variant " << variant;
            viewed.direction().apply(eps);
            model.weights_changed();
            model.forward(inputs.data(), B, S);
            if (gemm == "openblas") {
                EXPECT_EQ(std::memcmp(through.data(), model.logits(), sizeof(float) * std::size_t(n)), 0)
                    << "variant " << variant << ", eps " << eps;
            }
            for (std::int64_t i = 0; i < n; ++i)
                ASSERT_NEAR(through[std::size_t(i)], model.logits()[i], 1e-5f * (1.0f + std::fabs(model.logits()[i])))
                    << gemm << ", variant " << variant << ", eps " << eps << ", logit " << i;
            restore();
            model.weights_changed();
        }
    }
}

// In bf16 the cpu device keeps each weight packed, by address, until weights_changed(); a
// viewed forward must read θ + c·z as it is made, never a pack kept from an earlier matrix made
// in the same scratch or from θ itself. (Routing made matrices through weight_forward fails
// this test.) The perturbation is made large enough (c = 0.05) to show above bf16's rounding,
// and the test checks that it does.
TEST(Spsa, ViewedPerturbationInBf16ReadsTheViewNotAKeptPack) {
    if (!bf16_missing().empty()) GTEST_SKIP() << "no bf16 products here: " << bf16_missing();
    const ModelConfig c = test::tiny_config(/*tied=*/false);
    Weights w = test::random_weights(c, 13);
    const int B = 2, S = 6;
    std::vector<std::int32_t> inputs(B * S);
    for (int i = 0; i < B * S; ++i) inputs[std::size_t(i)] = (i * 5 + 1) % c.vocab;
    const VocabMap map = VocabMap::identity(c.vocab);
    auto device = make_device("cpu", device_options(2, "full", "auto", "bf16"));
    Transformer model(w, *device, B, map, /*for_training=*/false);
    const std::int64_t n = std::int64_t(B) * S * c.vocab;
    model.forward(inputs.data(), B, S);  // packs θ
    const std::vector<float> plain(model.logits(), model.logits() + n);
    PerturbedWeights viewed;
    viewed.draw(mezo_parameters(w, nullptr), 99);
    const float eps[2] = {0.05f, -0.05f};
    std::vector<float> through[2];
    model.set_weight_source(&viewed);
    for (int i = 0; i < 2; ++i) {  // back to back, as a step's two passes: the views reuse their memory
        viewed.set_scale(eps[i]);
        model.forward(inputs.data(), B, S);
        through[i].assign(model.logits(), model.logits() + n);
    }
    model.set_weight_source(nullptr);
    Weights before = w;
    for (int i = 0; i < 2; ++i) {
        viewed.direction().apply(eps[i]);
        model.weights_changed();
        model.forward(inputs.data(), B, S);
        double moved = 0, differs = 0;
        for (std::int64_t j = 0; j < n; ++j) {
            const double scale = 1.0 + std::fabs(model.logits()[j]);
            moved = std::max(moved, std::fabs(double(plain[std::size_t(j)]) - model.logits()[j]) / scale);
            differs = std::max(differs, std::fabs(double(through[i][std::size_t(j)]) - model.logits()[j]) / scale);
        }
        EXPECT_GT(moved, 0.05) << "eps " << eps[i] << ": the perturbation does not show above bf16's rounding";
        EXPECT_LT(differs, 5e-3) << "eps " << eps[i] << ": the viewed forward did not read θ + c·z";
        w.for_each([&](const std::string& name, Tensor& t) {
            std::memcpy(t.data(), before.find(name)->data(), t.bytes());
        });
    }
}

// Viewed steps end where in-place steps with a copy restore end, bit for bit, given the same
// updates; L+ is the same number (on OpenBLAS; to float rounding in oneDNN's panels) and L- the
// same up to the rounding of θ + εz − 2εz. Each
// update is deferred into the next step's +ε pass, and flushed before the weights are compared:
// with a tied classifier read whole, and with an untied one read by rows of a compact
// vocabulary (the rows it never reads are updated by the flush), with weight decay.
TEST(Spsa, ViewedStepsEndWhereTheCopyRestoredStepsEnd) {
    for (const std::string& gemm : viewed_gemms())
    for (const bool tied : {true, false}) {
        const ModelConfig c = test::tiny_config(tied);
        Weights a = test::random_weights(c, 5), b = a;
        const int B = 1, S = 8;
        std::vector<std::int32_t> inputs(S), targets(S);
        for (int i = 0; i < S; ++i) {
            inputs[std::size_t(i)] = (i * 5 + 2) % (c.vocab / 2);
            targets[std::size_t(i)] = (i * 3 + 1) % (c.vocab / 2);
        }
        std::vector<std::uint16_t> present(inputs.begin(), inputs.end());
        present.insert(present.end(), targets.begin(), targets.end());
        const VocabMap map = tied ? VocabMap::identity(c.vocab) : VocabMap::build(present, c.vocab);
        std::vector<std::int32_t> compact_targets(S);
        for (int i = 0; i < S; ++i) compact_targets[std::size_t(i)] = map.to_compact(targets[std::size_t(i)]);
        auto device = make_device("cpu", device_options(2, "full", gemm));
        Transformer ma(a, *device, B, map, false), mb(b, *device, B, map, false);
        auto loss_of = [&](Transformer& m) {
            return [&] {
                m.forward(inputs.data(), B, S);
                return m.loss(compact_targets.data());
            };
        };
        const auto pa = mezo_parameters(a, nullptr), pb = mezo_parameters(b, nullptr);
        const auto fixed = [](const SpsaEstimate&) { return ZoUpdate{-3e-4f, 1e-4f}; };
        ParamSnapshot snapshot;
        StepDirection za;
        PerturbedWeights viewed;
        mb.set_weight_source(&viewed);
        for (std::uint64_t seed : {3ull, 4ull, 5ull, 6ull}) {
            const SpsaHooks hooks{loss_of(ma), [&] { ma.weights_changed(); }, &snapshot};
            const SpsaEstimate ea = spsa_two_sided_update(pa, seed, 1e-3f, Direction::Rademacher, hooks, za, fixed);
            ma.weights_changed();
            const SpsaEstimate eb = spsa_two_sided_viewed(pb, seed, 1e-3f, loss_of(mb), viewed, fixed);
            if (gemm == "openblas") {
                EXPECT_EQ(ea.loss_plus, eb.loss_plus) << "tied " << tied << ", seed " << seed;
            }
            EXPECT_NEAR(ea.loss_plus, eb.loss_plus, 1e-5) << gemm << ", tied " << tied << ", seed " << seed;
            EXPECT_NEAR(ea.loss_minus, eb.loss_minus, 1e-5);
            if (seed == 4) {  // as before an evaluation in the middle of a run
                EXPECT_TRUE(viewed.flush());
                EXPECT_TRUE(a.bit_equal(b)) << "tied " << tied << ", seed " << seed;
            }
        }
        EXPECT_FALSE(a.bit_equal(b)) << "the last update is still deferred";
        EXPECT_TRUE(viewed.flush());
        EXPECT_FALSE(viewed.flush());
        EXPECT_TRUE(a.bit_equal(b)) << "tied " << tied;
    }
}

// A drawn matrix's rows made in several panels of a oneDNN product (rows_of) are its view's
// floats (the product equal to float rounding), and θ takes the deferred update in the panels
// bit for bit as view() gives it; the flush then updates what neither read.
TEST(Spsa, PanelsOfADrawnMatrixUpdateThetaAsItsViewDoes) {
    if (!onednn_available()) GTEST_SKIP() << "this build has no oneDNN: products are not made in panels";
    const int N = 1500, K = 96, M = 6;
    ASSERT_GT(N, made_panel_rows(N, K, 2)) << "one panel would not test the panels";
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    Tensor wa({N, K}), ga({K});
    for (Tensor* t : {&wa, &ga})
        for (std::int64_t i = 0; i < t->numel(); ++i) t->data()[i] = u(rng);
    Tensor wb = wa, gb = ga;
    const auto spans = [](Tensor& w, Tensor& g) {
        return std::vector<ParamSpan>{{"w", w.data(), w.numel(), true}, {"g", g.data(), g.numel(), false}};
    };
    const auto pa = spans(wa, ga), pb = spans(wb, gb);
    PerturbedWeights va, vb;
    for (auto [viewed, params] : {std::pair{&va, &pa}, std::pair{&vb, &pb}}) {
        viewed->draw(*params, 1);
        viewed->defer_update(-3e-4f, 1e-4f);
        viewed->draw(*params, 2);
        viewed->set_scale(1e-3f);
    }
    const float* view = va.view(wa);
    std::vector<float> X(std::size_t(M) * K), Y(std::size_t(M) * N);
    for (float& x : X) x = u(rng);
    auto device = make_device("cpu", device_options(2, "full", "onednn"));
    const WeightRows rows = vb.rows_of(wb);
    ASSERT_TRUE(rows);
    device->made_matmul_forward(X.data(), rows, M, N, K, Y.data());
    EXPECT_TRUE(wa.bit_equal(wb)) << "θ updated in the panels as in the view's sweep";
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double want = 0;
            for (int k = 0; k < K; ++k) want += double(X[std::size_t(i) * K + k]) * view[std::size_t(j) * K + k];
            ASSERT_NEAR(Y[std::size_t(i) * N + j], want, 1e-5) << "at " << i << "," << j;
        }
    EXPECT_TRUE(va.flush());
    EXPECT_TRUE(vb.flush());
    EXPECT_TRUE(ga.bit_equal(gb));
    EXPECT_TRUE(wa.bit_equal(wb));
}

// The sweep of a deferred update against its definition, with z as perturb() adds it: y = (x +
// restore·z_u)·keep + coeff·z_u, out = y + c·z_v, each float rounded on its own; over each
// kernel's head, runs and tail, and in place.
TEST(Spsa, SignedSweepMatchesItsDefinition) {
    const std::int64_t sizes[2] = {333, 667};
    std::vector<float> first(333), second(667);
    const std::vector<ParamSpan> params = {{"a", first.data(), 333, true}, {"b", second.data(), 667, false}};
    const auto z_of = [&](std::uint64_t seed) {  // each buffer's z: zeros moved by c = 1
        std::vector<std::vector<float>> z = {std::vector<float>(333, 0.0f), std::vector<float>(667, 0.0f)};
        perturb({{"a", z[0].data(), 333, true}, {"b", z[1].data(), 667, false}}, seed, 1.0f, Direction::Rademacher);
        return z;
    };
    const auto zu = z_of(17), zv = z_of(18);
    StepDirection u, v;
    u.draw(params, 17, Direction::Rademacher);
    v.draw(params, 18, Direction::Rademacher);
    std::vector<SweepIsa> isas = {SweepIsa::portable};
    if (best_sweep_isa() != SweepIsa::portable) isas.push_back(SweepIsa::avx2);
    if (best_sweep_isa() == SweepIsa::avx512) isas.push_back(SweepIsa::avx512);
    for (const SweepIsa isa : isas) {
        for (std::size_t b = 0; b < 2; ++b) {
            for (std::int64_t from : {std::int64_t(0), std::int64_t(3), std::int64_t(9)}) {
                const std::int64_t m = sizes[b] - from - 2;
                const std::size_t count = std::size_t(m);
                std::vector<float> x(count), updated(count), out(count);
                for (std::int64_t i = 0; i < m; ++i) x[std::size_t(i)] = float(std::sin(double(i + from)) * 3.0);
                for (const float restore : {0.0f, 0.3f}) {
                    SignedSweep s;
                    s.update = &u;
                    s.restore = restore;
                    s.keep = 0.75f;
                    s.coeff = 0.125f;
                    s.x_out = updated.data();
                    s.view = &v;
                    s.c = 0.5f;
                    s.out = out.data();
                    s.isa = isa;
                    signed_sweep(x.data(), u.offset(b) + from, m, s);
                    for (std::int64_t i = 0; i < m; ++i) {
                        const std::size_t e = std::size_t(from + i);
                        const float xi = x[std::size_t(i)];
                        volatile float restored = restore == 0.0f ? xi : xi + restore * zu[b][e];
                        volatile float scaled = restored * 0.75f;  // rounded on its own, never fused
                        const float y = scaled + 0.125f * zu[b][e];
                        const std::string where = "kernel " + std::to_string(int(isa)) + ", buffer " +
                                                  std::to_string(b) + " at " + std::to_string(e);
                        ASSERT_EQ(updated[std::size_t(i)], y) << where;
                        ASSERT_EQ(out[std::size_t(i)], y + 0.5f * zv[b][e]) << where;
                    }
                    // In place (out = x, no x_out): what perturb_in_place sweeps.
                    std::vector<float> inplace = x;
                    s.x_out = nullptr;
                    s.out = inplace.data();
                    signed_sweep(inplace.data(), u.offset(b) + from, m, s);
                    ASSERT_EQ(std::memcmp(inplace.data(), out.data(), count * sizeof(float)), 0)
                        << "kernel " << int(isa);
                }
                // Without an update: the view alone, out = x + c·z_v.
                SignedSweep view;
                view.view = &v;
                view.c = 0.5f;
                view.out = out.data();
                view.isa = isa;
                signed_sweep(x.data(), v.offset(b) + from, m, view);
                for (std::int64_t i = 0; i < m; ++i)
                    ASSERT_EQ(out[std::size_t(i)], x[std::size_t(i)] + 0.5f * zv[b][std::size_t(from + i)]);
            }
        }
    }
}

TEST(Spsa, ParameterOrderFollowsTrainMezo) {
    ModelConfig c = test::tiny_config(true);
    Weights w = test::random_weights(c, 1);
    std::vector<std::string> names;
    for (const auto& p : mezo_parameters(w, nullptr)) names.push_back(p.name);
    const std::vector<std::string> full = {"embed",
                                           "layers.0.rms_att", "layers.0.wq", "layers.0.wk", "layers.0.wv",
                                           "layers.0.wo", "layers.0.rms_ffn", "layers.0.w1", "layers.0.w2",
                                           "layers.0.w3"};
    EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 10), full);
    EXPECT_EQ(names.back(), "rms_final");
    Lora lora = Lora::init(c, 2, parse_lora_targets("all"), 42);
    names.clear();
    for (const auto& p : mezo_parameters(w, &lora)) names.push_back(p.name);
    const std::vector<std::string> adapters = {
        "layers.0.wq.lora_a", "layers.0.wq.lora_b", "layers.0.wk.lora_a", "layers.0.wk.lora_b",
        "layers.0.wv.lora_a", "layers.0.wv.lora_b", "layers.0.wo.lora_a", "layers.0.wo.lora_b",
        "layers.0.w1.lora_a", "layers.0.w1.lora_b", "layers.0.w2.lora_a", "layers.0.w2.lora_b",
        "layers.0.w3.lora_a", "layers.0.w3.lora_b", "layers.0.rms_att", "layers.0.rms_ffn"};
    EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 16), adapters);
    EXPECT_EQ(names.back(), "rms_final");
    EXPECT_EQ(names.size(), std::size_t(16 * c.layers + 1));
}

}  // namespace
}  // namespace ane
