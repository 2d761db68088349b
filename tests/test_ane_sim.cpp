// The ane-sim device against the fp32 cpu device: every block (each one MIL kernel or two) on
// random inputs at an MHA and a GQA shape, the surface sizes of spec/ane.md §5.6, and a whole
// model's loss and gradients in each mode.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/half.hpp"
#include "ane/mil/generators.hpp"
#include "ane/mil/interpreter.hpp"
#include "ane/mezo/lora.hpp"
#include "ane/model/kernels.hpp"
#include "ane/model/transformer.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

struct Shape {
    const char* name;
    int D, nh, nkv, hd, H, S, B;
    int Q() const { return nh * hd; }
    int KV() const { return nkv * hd; }
    int T() const { return B * S; }
};
void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }
const Shape kMha{"MHA hd64", 128, 2, 2, 64, 256, 32, 2};
const Shape kGqa{"GQA hd128", 256, 4, 2, 128, 384, 16, 2};

std::vector<float> randn(std::size_t n, float scale, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}
std::vector<float> weight(int out, int in, unsigned seed) {
    return randn(std::size_t(out) * std::size_t(in), 1.0f / std::sqrt(float(in)), seed);
}

// max |got - want| / max |want|: fp16 storage keeps 11 significant bits (2^-11 ≈ 4.9e-4 relative
// per rounding), a kernel rounds a handful of times in sequence.
double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
    double err = 0, scale = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
        err = std::max(err, std::fabs(double(got[i]) - double(want[i])));
        scale = std::max(scale, std::fabs(double(want[i])));
    }
    return err / std::max(scale, 1e-30);
}

// The bound every block is held to: 6 fp16 roundings (2^-11 each) of the output's scale with
// fp32 accumulation (measured worst: 1.0e-3, dk of the GQA shape); 24 with fp16 accumulation
// (measured worst: 4.0e-3, the gate g), whose partial sums each round.
constexpr double kFp32AccumBound = 6.0 / 2048, kFp16AccumBound = 24.0 / 2048;

class Devices {
public:
    explicit Devices(bool fp16_accumulate = false, bool bake = false) {
        cpu = make_device("cpu", 1);
        DeviceOptions o;
        o.threads = 1;
        o.fp16_accumulate = fp16_accumulate;
        o.bake_frozen_weights = bake;
        sim = make_device("ane-sim", o);
    }
    std::unique_ptr<Device> cpu, sim;
    void begin(const Shape& s) {
        cpu->begin_pass(s.B, s.S);
        sim->begin_pass(s.B, s.S);
    }
};

class AneSimBlocks : public ::testing::TestWithParam<Shape> {};

TEST_P(AneSimBlocks, ProjectionsForwardAndBackward) {
    const Shape s = GetParam();
    Devices d;
    d.begin(s);
    struct P {
        Projection p;
        int out, in;
        const char* kernel;
    };
    for (const P& p : {P{Projection::wq, s.Q(), s.D, "wqFwd"}, P{Projection::wk, s.KV(), s.D, "wkvFwd"},
                       P{Projection::wo, s.D, s.Q(), "woFwd"}, P{Projection::w1, s.H, s.D, "w13Fwd"},
                       P{Projection::w2, s.D, s.H, "w2Fwd"}}) {
        const auto W = weight(p.out, p.in, 10);
        const auto X = randn(std::size_t(s.T()) * p.in, 1.0f, 11);
        auto y_cpu = randn(std::size_t(s.T()) * p.out, 1.0f, 12), y_sim = y_cpu;
        d.cpu->projection_forward(p.p, X.data(), W.data(), s.T(), p.out, p.in, y_cpu.data(), 0.5f, 1.0f);
        d.sim->projection_forward(p.p, X.data(), W.data(), s.T(), p.out, p.in, y_sim.data(), 0.5f, 1.0f);
        EXPECT_LT(rel_error(y_sim, y_cpu), kFp32AccumBound) << p.kernel;
        EXPECT_NE(d.sim->kernel_report().find(p.kernel), std::string::npos) << p.kernel;
    }
    for (const P& p : {P{Projection::w2, s.D, s.H, "ffnBwdW2t"}, P{Projection::wo, s.D, s.Q(), "wotBwd"},
                       P{Projection::wq, s.Q(), s.D, "qBwd"}}) {
        const auto W = weight(p.out, p.in, 20);
        const auto dY = randn(std::size_t(s.T()) * p.out, 1.0f, 21);
        std::vector<float> dx_cpu(std::size_t(s.T()) * p.in), dx_sim(dx_cpu.size());
        d.cpu->projection_input_grad(p.p, dY.data(), W.data(), s.T(), p.out, p.in, dx_cpu.data(), 0.7f, 0.0f);
        d.sim->projection_input_grad(p.p, dY.data(), W.data(), s.T(), p.out, p.in, dx_sim.data(), 0.7f, 0.0f);
        EXPECT_LT(rel_error(dx_sim, dx_cpu), kFp32AccumBound) << p.kernel;
        EXPECT_NE(d.sim->kernel_report().find(p.kernel), std::string::npos) << p.kernel;
    }
}

struct AttentionRun {
    std::vector<float> q, k, v, o, probs;
};

AttentionRun run_sdpa(Device& dev, const Shape& s, const std::vector<float>& xn, const std::vector<float>& wq,
                      const std::vector<float>& wk, const std::vector<float>& wv, double theta) {
    std::vector<float> cos(std::size_t(s.S) * std::size_t(s.hd / 2)), sin(cos.size());
    kernels::rope_tables(s.S, s.hd, theta, cos.data(), sin.data());
    AttentionRun r;
    r.q.resize(std::size_t(s.T()) * s.Q());
    r.o.resize(r.q.size());
    r.k.resize(std::size_t(s.T()) * s.KV());
    r.v.resize(r.k.size());
    r.probs.resize(std::size_t(s.B) * s.nh * s.S * s.S);
    dev.sdpa_forward(xn.data(), wq.data(), wk.data(), wv.data(), s.D, {s.B, s.S, s.nh, s.nkv, s.hd},
                     {cos.data(), sin.data(), theta, {}}, r.q.data(), r.k.data(), r.v.data(), r.o.data(), r.probs.data());
    return r;
}

TEST_P(AneSimBlocks, FusedAttentionForwardAndBackward) {
    const Shape s = GetParam();
    Devices d;
    d.begin(s);
    const auto xn = randn(std::size_t(s.T()) * s.D, 1.0f, 30);
    const auto wq = weight(s.Q(), s.D, 31), wk = weight(s.KV(), s.D, 32), wv = weight(s.KV(), s.D, 33);
    // θ = 1e6 (Qwen3's): the kernel's RoPE tables follow the model, not a hard-coded 10000.
    const AttentionRun c = run_sdpa(*d.cpu, s, xn, wq, wk, wv, 1e6);
    const AttentionRun a = run_sdpa(*d.sim, s, xn, wq, wk, wv, 1e6);
    EXPECT_LT(rel_error(a.q, c.q), kFp32AccumBound) << "rotated q";
    EXPECT_LT(rel_error(a.k, c.k), kFp32AccumBound) << "rotated k";
    EXPECT_LT(rel_error(a.v, c.v), kFp32AccumBound) << "v";
    EXPECT_LT(rel_error(a.o, c.o), kFp32AccumBound) << "attention output (GQA maps query head h to KV head h / r)";

    const auto dout = randn(c.o.size(), 1.0f, 34);
    std::vector<float> dq_c(c.q.size()), dk_c(c.k.size()), dv_c(c.v.size());
    std::vector<float> dq_a(c.q.size()), dk_a(c.k.size()), dv_a(c.v.size());
    const AttentionShape as{s.B, s.S, s.nh, s.nkv, s.hd};
    d.cpu->sdpa_backward(c.q.data(), c.k.data(), c.v.data(), c.probs.data(), dout.data(), as, dq_c.data(), dk_c.data(),
                         dv_c.data());
    d.sim->sdpa_backward(c.q.data(), c.k.data(), c.v.data(), c.probs.data(), dout.data(), as, dq_a.data(), dk_a.data(),
                         dv_a.data());
    EXPECT_LT(rel_error(dq_a, dq_c), kFp32AccumBound) << "dq";
    EXPECT_LT(rel_error(dk_a, dk_c), kFp32AccumBound) << "dk (summed over the query heads of a KV head)";
    EXPECT_LT(rel_error(dv_a, dv_c), kFp32AccumBound) << "dv";
    for (const char* k : {"sdpaFwd", "sdpaBwd1", "sdpaBwd2"})
        EXPECT_NE(d.sim->kernel_report().find(k), std::string::npos) << k;
}

TEST_P(AneSimBlocks, FusedFfnForwardAndBackward) {
    const Shape s = GetParam();
    for (bool fp16_acc : {false, true}) {
        Devices d(fp16_acc);
        d.begin(s);
        const double bound = fp16_acc ? kFp16AccumBound : kFp32AccumBound;
        const std::size_t TD = std::size_t(s.T()) * s.D, TH = std::size_t(s.T()) * s.H;
        const auto f = randn(TD, 1.0f, 40), x2 = randn(TD, 1.0f, 41);
        const auto w1 = weight(s.H, s.D, 42), w3 = weight(s.H, s.D, 43), w2 = weight(s.D, s.H, 44);
        std::vector<float> h1c(TH), h3c(TH), gc(TH), nc(TD), h1a(TH), h3a(TH), ga(TH), na(TD);
        const float alpha = 1.0f / std::sqrt(8.0f);
        d.cpu->ffn_forward(f.data(), x2.data(), w1.data(), w3.data(), w2.data(), s.T(), s.D, s.H, alpha, h1c.data(),
                           h3c.data(), gc.data(), nc.data());
        d.sim->ffn_forward(f.data(), x2.data(), w1.data(), w3.data(), w2.data(), s.T(), s.D, s.H, alpha, h1a.data(),
                           h3a.data(), ga.data(), na.data());
        EXPECT_LT(rel_error(h1a, h1c), bound) << "h1, fp16 accumulation " << fp16_acc;
        EXPECT_LT(rel_error(h3a, h3c), bound) << "h3";
        EXPECT_LT(rel_error(ga, gc), bound) << "g";
        EXPECT_LT(rel_error(na, nc), bound) << "x + α W2 g";

        const auto dh1 = randn(TH, 1.0f, 45), dh3 = randn(TH, 1.0f, 46);
        std::vector<float> dfc(TD), dfa(TD);
        d.cpu->ffn_input_grad(dh1.data(), dh3.data(), w1.data(), w3.data(), s.T(), s.H, s.D, dfc.data());
        d.sim->ffn_input_grad(dh1.data(), dh3.data(), w1.data(), w3.data(), s.T(), s.H, s.D, dfa.data());
        EXPECT_LT(rel_error(dfa, dfc), bound) << "ffnBwdW13t";

        const std::size_t TKV = std::size_t(s.T()) * s.KV();
        const auto dk = randn(TKV, 1.0f, 47), dv = randn(TKV, 1.0f, 48);
        const auto wk = weight(s.KV(), s.D, 49), wv = weight(s.KV(), s.D, 50);
        auto dac = randn(TD, 1.0f, 51), daa = dac;
        d.cpu->kv_input_grad(dk.data(), dv.data(), wk.data(), wv.data(), s.T(), s.KV(), s.D, dac.data());
        d.sim->kv_input_grad(dk.data(), dv.data(), wk.data(), wv.data(), s.T(), s.KV(), s.D, daa.data());
        EXPECT_LT(rel_error(daa, dac), bound) << "kvBwd (accumulating)";
        for (const char* k : {"ffnFused", "ffnBwdW13t", "kvBwd"})
            EXPECT_NE(d.sim->kernel_report().find(k), std::string::npos) << k;
    }
}

TEST_P(AneSimBlocks, BakedConvKernels) {
    const Shape s = GetParam();
    Devices d(false, /*bake=*/true);
    d.begin(s);
    const std::size_t TD = std::size_t(s.T()) * s.D;
    const auto xn = randn(TD, 1.0f, 60);
    const auto wq = weight(s.Q(), s.D, 61), wk = weight(s.KV(), s.D, 62), wv = weight(s.KV(), s.D, 63);
    std::vector<float> qc(std::size_t(s.T()) * s.Q()), kc(std::size_t(s.T()) * s.KV()), vc(kc.size());
    std::vector<float> qa(qc.size()), ka(kc.size()), va(kc.size());
    d.cpu->qkv_forward(xn.data(), wq.data(), wk.data(), wv.data(), s.T(), s.D, s.Q(), s.KV(), qc.data(), kc.data(),
                       vc.data());
    d.sim->qkv_forward(xn.data(), wq.data(), wk.data(), wv.data(), s.T(), s.D, s.Q(), s.KV(), qa.data(), ka.data(),
                       va.data());
    EXPECT_LT(rel_error(qa, qc), kFp32AccumBound);
    EXPECT_LT(rel_error(ka, kc), kFp32AccumBound);
    EXPECT_LT(rel_error(va, vc), kFp32AccumBound);

    const auto wo = weight(s.D, s.Q(), 64);
    const auto o = randn(qc.size(), 1.0f, 65);
    std::vector<float> yc(TD), ya(TD);
    d.cpu->projection_forward(Projection::wo, o.data(), wo.data(), s.T(), s.D, s.Q(), yc.data());
    d.sim->projection_forward(Projection::wo, o.data(), wo.data(), s.T(), s.D, s.Q(), ya.data());
    EXPECT_LT(rel_error(ya, yc), kFp32AccumBound) << "conv1x1";

    const auto x2 = randn(TD, 1.0f, 66);
    const auto w1 = weight(s.H, s.D, 67), w3 = weight(s.H, s.D, 68), w2 = weight(s.D, s.H, 69);
    const std::size_t TH = std::size_t(s.T()) * s.H;
    std::vector<float> h1(TH), h3(TH), g(TH), nc(TD), na(TD);
    d.cpu->ffn_forward(xn.data(), x2.data(), w1.data(), w3.data(), w2.data(), s.T(), s.D, s.H, 0.5f, h1.data(),
                       h3.data(), g.data(), nc.data());
    d.sim->ffn_forward(xn.data(), x2.data(), w1.data(), w3.data(), w2.data(), s.T(), s.D, s.H, 0.5f, h1.data(),
                       h3.data(), g.data(), na.data());
    EXPECT_LT(rel_error(na, nc), kFp32AccumBound) << "FFN conv kernel, α = 0.5 applied";
    for (const char* k : {"qkvConv", "conv_wo", "ffnConv"})
        EXPECT_NE(d.sim->kernel_report().find(k), std::string::npos) << k;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AneSimBlocks, ::testing::Values(kMha, kGqa),
                         [](const auto& info) { return std::string(info.param.name).substr(0, 3); });

TEST(AneSimKernels, SurfaceBytesForTheAutoresearchShapeAreTheSpecs) {
    // 4L-512d autoresearch: D 512, H 1408, 8 heads, 2 KV heads, head_dim 64, S 128 (spec §5.6).
    const std::size_t D = 512, H = 1408, nh = 8, hd = 64, Dq = nh * hd, Dkv = 2 * hd, S = 128;
    mil::AttentionGeometry g{int(D), int(nh), 2, int(hd), int(S), 1e4, {}};
    struct Want {
        mil::Kernel k;
        std::size_t in, out;
    };
    const std::vector<Want> want = {
        {mil::dynamic_matmul("wqFwd", int(D), int(Dq), int(S)), 2 * D * (S + Dq), 2 * Dq * S},
        {mil::dynamic_matmul("wkvFwd", int(D), int(Dkv), int(S)), 2 * D * (S + Dkv), 2 * Dkv * S},
        {mil::dynamic_matmul("woFwd", int(Dq), int(D), int(S)), 2 * Dq * (S + D), 2 * D * S},
        {mil::dynamic_matmul("w13Fwd", int(D), int(H), int(S)), 2 * D * (S + H), 2 * H * S},
        {mil::dynamic_matmul("w2Fwd", int(H), int(D), int(S)), 2 * H * (S + D), 2 * D * S},
        {mil::sdpa_forward(g), 2 * D * (S + Dq + 2 * Dkv), 2 * (2 * Dq + 2 * Dkv + D) * S},
        {mil::ffn_fused(int(D), int(H), int(S), 0.353553f), 2 * D * (2 * S + 3 * H), 2 * (D + 3 * H) * S},
        {mil::dynamic_matmul("ffnBwdW2t", int(D), int(H), int(S)), 2 * D * (S + H), 2 * H * S},
        {mil::two_matmul_backward("ffnBwdW13t", int(H), int(D), int(S)), 2 * H * (2 * S + 2 * D), 2 * D * S},
        {mil::dynamic_matmul("wotBwd", int(D), int(Dq), int(S)), 2 * D * (S + Dq), 2 * Dq * S},
        {mil::sdpa_backward1(g), 2 * 4 * Dq * S, 2 * (Dq + 2 * nh * S) * S},
        {mil::sdpa_backward2(g), 2 * (2 * nh * S + 2 * Dq) * S, 2 * 2 * Dq * S},
        {mil::dynamic_matmul("qBwd", int(Dq), int(D), int(S)), 2 * Dq * (S + D), 2 * D * S},
        {mil::two_matmul_backward("kvBwd", int(Dkv), int(D), int(S)), 2 * Dkv * (2 * S + 2 * D), 2 * D * S},
    };
    for (const auto& w : want) {
        EXPECT_EQ(w.k.input_bytes(), w.in) << w.k.name;
        EXPECT_EQ(w.k.output_bytes(), w.out) << w.k.name;
        // The program's declared input and output agree with the surfaces.
        const mil::Program p = mil::parse_program(w.k.text, w.k.blobs);
        EXPECT_EQ(std::size_t(p.input_type.numel()) * 2, w.in) << w.k.name;
        EXPECT_EQ(std::size_t(p.output_type().numel()) * 2, w.out) << w.k.name;
    }
    EXPECT_EQ(want[6].k.input_bytes(), 4587520u);  // the spec's worked example
}

TEST(AneSimKernels, ConstantTablesAreTheSpecs) {
    const auto mask = mil::causal_mask(4);
    EXPECT_EQ(mask[0 * 4 + 0], 0.0f);
    EXPECT_EQ(mask[0 * 4 + 1], -65504.0f);
    EXPECT_EQ(mask[3 * 4 + 3], 0.0f);
    std::vector<float> cos, sin;
    mil::rope_table_rows(3, 4, 1e6, cos, sin);
    for (int p = 0; p < 3; ++p)
        for (int i = 0; i < 2; ++i) {
            const double angle = p / std::pow(1e6, 2.0 * i / 4);
            EXPECT_NEAR(cos[std::size_t(p * 4 + 2 * i)], std::cos(angle), 1e-6);
            EXPECT_EQ(cos[std::size_t(p * 4 + 2 * i)], cos[std::size_t(p * 4 + 2 * i + 1)]);
            EXPECT_NEAR(sin[std::size_t(p * 4 + 2 * i + 1)], std::sin(angle), 1e-6);
        }
}

// The cosine of the angle between two tensors' values.
double cosine(const Tensor& a, const Tensor& b) {
    double dot = 0, na = 0, nb = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) {
        dot += double(a.data()[i]) * b.data()[i];
        na += double(a.data()[i]) * a.data()[i];
        nb += double(b.data()[i]) * b.data()[i];
    }
    return dot / std::sqrt(na * nb + 1e-300);
}

// A whole model on ane-sim vs cpu: the loss within fp16 tolerance, every gradient pointing
// the same way (cosine > 0.99), in each mode.
TEST(AneSimModel, LossAndGradientsTrackTheCpuInEveryMode) {
    ModelConfig c = test::tiny_config();
    c.kv_heads = c.heads / 2;  // grouped-query
    c.validate("test");
    const Weights w = test::random_weights(c, 7);
    const int B = 2, S = c.seq;
    std::vector<std::int32_t> inputs(std::size_t(B * S)), targets(inputs.size());
    std::mt19937 rng(3);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        inputs[i] = std::int32_t(rng() % unsigned(c.vocab));
        targets[i] = std::int32_t(rng() % unsigned(c.vocab));
    }
    auto run = [&](Device& dev, Weights& grads) {
        Transformer m(w, dev, B, VocabMap::identity(c.vocab), true, S);
        m.forward(inputs.data(), B, S);
        const double loss = m.loss_and_dlogits(targets.data(), 256.0f);
        m.backward(grads);
        return loss;
    };
    auto cpu = make_device("cpu", 1);
    Weights gc = Weights::zeros(c);
    const double lc = run(*cpu, gc);
    for (AneMode mode : {AneMode::full, AneMode::matmul, AneMode::cpu_bwd}) {
        DeviceOptions o;
        o.threads = 1;
        o.ane_mode = mode;
        auto sim = make_device("ane-sim", o);
        Weights ga = Weights::zeros(c);
        const double la = run(*sim, ga);
        EXPECT_NEAR(la, lc, 1e-2 * lc) << ane_mode_name(mode);
        gc.for_each([&](const std::string& name, Tensor& t) {
            const Tensor& a = *ga.find(name);
            EXPECT_GT(cosine(a, t), 0.99) << name << " in mode " << ane_mode_name(mode);
        });
    }
}

// Adapters on every projection take the unfused path (projections, then the adapters, then
// RoPE and attention on the cpu) and the backward blocks on the simulator.
TEST(AneSimModel, LoraGradientsTrackTheCpu) {
    ModelConfig c = test::tiny_config();
    c.kv_heads = c.heads / 2;
    c.validate("test");
    const Weights w = test::random_weights(c, 8);
    Lora lora = Lora::init(c, 4, parse_lora_targets("all"), 3);
    lora.for_each([](const std::string&, Tensor& t) {  // B starts at zero: give it values
        for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] += 0.01f * float((i * 7) % 13 - 6);
    });
    const int B = 2, S = c.seq;
    std::vector<std::int32_t> inputs(std::size_t(B * S)), targets(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        inputs[i] = std::int32_t((i * 31 + 7) % std::size_t(c.vocab));
        targets[i] = std::int32_t((i * 17 + 3) % std::size_t(c.vocab));
    }
    auto run = [&](Device& dev) {
        Transformer m(w, dev, B, VocabMap::identity(c.vocab), true, S);
        m.set_lora(&lora);
        Weights grads = Weights::norms_only(c);
        Lora lg = Lora::zeros(c, lora.rank, lora.targets);
        m.forward(inputs.data(), B, S);
        m.loss_and_dlogits(targets.data(), 256.0f);
        m.backward(grads, &lg);
        return lg;
    };
    auto cpu = make_device("cpu", 1);
    auto sim = make_device("ane-sim", DeviceOptions{1, AneMode::full, false, false});
    Lora gc = run(*cpu), ga = run(*sim);
    gc.for_each([&](const std::string& name, Tensor& t) {
        const Tensor& a = *ga.find(name);
        EXPECT_GT(cosine(a, t), 0.99) << name;
    });
}

TEST(AneSimModel, UnknownAccumulatorIsAUsageError) {
    ::setenv("ANE_SIM_ACCUM", "fp8", 1);
    EXPECT_THROW(device_options(1, "full"), UsageError);
    ::setenv("ANE_SIM_ACCUM", "fp16", 1);
    EXPECT_TRUE(device_options(1, "full").fp16_accumulate);
    ::unsetenv("ANE_SIM_ACCUM");
    EXPECT_FALSE(device_options(1, "cpu-bwd").fp16_accumulate);
    EXPECT_THROW(device_options(1, "fast"), UsageError);
}

}  // namespace
}  // namespace ane
