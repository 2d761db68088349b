// The ANE simulator's cost against the cpu device: one training step (forward, backward,
// AdamW) of the demo model and of the autoresearch shape, on cpu and on ane-sim in each mode
// and accumulator width, median of a few steps after a warm-up, same process, same threads.
// Prints the ratio to the cpu step and, for the full mode, the time per kernel; then each block
// alone (one layer, all sequences of a batch, weights re-staged as after an update) on both.
//   bench_ane_sim [--steps N] [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ane/config.hpp"
#include "ane/device/device.hpp"
#include "ane/half.hpp"
#include "ane/model/init.hpp"
#include "ane/model/transformer.hpp"
#include "ane/optim.hpp"
#include "ane/runtime.hpp"

#include "bench_stats.hpp"
#include "cpu_info.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Setup {
    const char* label;
    std::string device;
    ane::AneMode mode;
    bool fp16_accumulate;
};

struct Result {
    double ms = 0;
    std::string kernels;
};

Result run(const ane::ModelConfig& c, int batch, const Setup& s, int threads, int steps) {
    ane::DeviceOptions o;
    o.threads = threads;
    o.ane_mode = s.mode;
    o.fp16_accumulate = s.fp16_accumulate;
    auto device = ane::make_device(s.device, o);
    ane::Weights w = ane::init_weights(c, 42);
    ane::Transformer model(w, *device, batch, ane::VocabMap::identity(c.vocab));
    ane::Weights grads = ane::Weights::zeros(c);
    ane::AdamMoments moments = ane::AdamMoments::zeros(c);
    const int T = batch * c.seq;
    std::mt19937 rng(1);
    std::vector<std::int32_t> inputs(static_cast<std::size_t>(T)), targets(static_cast<std::size_t>(T));
    auto step = [&](int t) {
        for (int i = 0; i < T; ++i) {
            inputs[std::size_t(i)] = int(rng() % unsigned(c.vocab));
            targets[std::size_t(i)] = int(rng() % unsigned(c.vocab));
        }
        ane::zero_grads(grads);
        model.forward(inputs.data(), batch, c.seq);
        model.loss_and_dlogits(targets.data(), 256.0f);
        model.backward(grads);
        ane::adamw_update(w, grads, moments, t, 3e-4f, {}, 1.0f / 256.0f);
        model.weights_changed();
    };
    step(1);
    std::vector<double> times;
    for (int i = 0; i < steps; ++i) {
        const auto t0 = Clock::now();
        step(2 + i);
        times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return {1000.0 * median(times), device->kernel_report()};
}

double median_ms(const std::vector<double>& v) { return 1000.0 * median(v); }

// Each block of one layer on `dev`: median ms over `reps` calls, weights_changed() before each
// (a training step stages every layer's weights once).
std::vector<std::pair<std::string, double>> time_blocks(ane::Device& dev, const ane::ModelConfig& c, int B, int reps) {
    const int S = c.seq, T = B * S, D = c.dim, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim();
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.5f);
    auto buf = [&](std::size_t n) {
        std::vector<float> v(n);
        for (auto& x : v) x = nd(rng) * 0.2f;
        return v;
    };
    const std::size_t TD = std::size_t(T) * std::size_t(D), TQ = std::size_t(T) * std::size_t(Q),
                      TK = std::size_t(T) * std::size_t(KV), TH = std::size_t(T) * std::size_t(H);
    auto x = buf(TD), x2 = buf(TD), dx = buf(TD), q = buf(TQ), o = buf(TQ), dq = buf(TQ), k = buf(TK), v = buf(TK),
         dk = buf(TK), dv = buf(TK), h1 = buf(TH), h3 = buf(TH), g = buf(TH), next = buf(TD);
    auto wq = buf(std::size_t(Q) * D), wk = buf(std::size_t(KV) * D), wv = buf(std::size_t(KV) * D),
         wo = buf(std::size_t(D) * Q), w1 = buf(std::size_t(H) * D), w3 = buf(std::size_t(H) * D),
         w2 = buf(std::size_t(D) * H);
    std::vector<float> probs(std::size_t(B) * c.heads * S * S), cosv(std::size_t(S) * c.head_dim / 2), sinv(cosv.size());
    for (std::size_t i = 0; i < cosv.size(); ++i) {
        cosv[i] = std::cos(0.01f * float(i));
        sinv[i] = std::sin(0.01f * float(i));
    }
    const ane::AttentionShape as{B, S, c.heads, c.kv_heads, c.head_dim};
    const ane::RopeTables rope{cosv.data(), sinv.data(), c.rope_theta, {}};
    const float alpha = float(c.residual_scale);
    dev.begin_pass(B, S);
    // The probabilities a cpu backward reads come from a forward.
    dev.sdpa_forward(x.data(), wq.data(), wk.data(), wv.data(), D, as, rope, q.data(), k.data(), v.data(), o.data(),
                     probs.data());
    const std::vector<std::pair<std::string, std::function<void()>>> blocks = {
        {"sdpaFwd", [&] { dev.sdpa_forward(x.data(), wq.data(), wk.data(), wv.data(), D, as, rope, q.data(), k.data(),
                                           v.data(), o.data(), probs.data()); }},
        {"woFwd", [&] { dev.projection_forward(ane::Projection::wo, o.data(), wo.data(), T, D, Q, x2.data(), alpha, 1.0f); }},
        {"ffnFused", [&] { dev.ffn_forward(x.data(), x2.data(), w1.data(), w3.data(), w2.data(), T, D, H, alpha, h1.data(),
                                           h3.data(), g.data(), next.data()); }},
        {"ffnBwdW2t", [&] { dev.projection_input_grad(ane::Projection::w2, dx.data(), w2.data(), T, D, H, g.data(), alpha); }},
        {"ffnBwdW13t", [&] { dev.ffn_input_grad(h1.data(), h3.data(), w1.data(), w3.data(), T, H, D, next.data()); }},
        {"wotBwd", [&] { dev.projection_input_grad(ane::Projection::wo, dx.data(), wo.data(), T, D, Q, dq.data(), alpha); }},
        {"sdpaBwd1+2", [&] { dev.sdpa_backward(q.data(), k.data(), v.data(), probs.data(), o.data(), as, dq.data(),
                                               dk.data(), dv.data()); }},
        {"qBwd", [&] { dev.projection_input_grad(ane::Projection::wq, dq.data(), wq.data(), T, Q, D, dx.data()); }},
        {"kvBwd", [&] { dev.kv_input_grad(dk.data(), dv.data(), wk.data(), wv.data(), T, KV, D, dx.data()); }},
    };
    std::vector<std::pair<std::string, double>> out;
    for (const auto& [name, call] : blocks) {
        dev.weights_changed();
        call();  // warm-up: compiles on ane-sim
        std::vector<double> t;
        for (int r = 0; r < reps; ++r) {
            dev.weights_changed();
            const auto t0 = Clock::now();
            call();
            t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        }
        out.emplace_back(name, median_ms(t));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    int steps = 5, threads = 0;
    for (int i = 1; i + 1 < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--steps") steps = std::max(1, std::atoi(argv[++i]));
        if (a == "--threads") threads = std::atoi(argv[++i]);
    }
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("bench_ane_sim: %s; fp16 conversions %s; OPENBLAS_CORETYPE=%s; median of %d steps\n",
                cpu_model().c_str(), ane::fp16_conversion_isa(), coretype ? coretype : "(unset)", steps);
    std::printf("blas: %s\n", ane::blas_description().c_str());

    // DeepNet's α comes with it, as for a new model in ane-train.
    const ane::ModelConfig demo = ane::load_config_json(std::string(ANE_SOURCE_DIR) + "/scripts/demo-model.json");
    ane::ModelConfig autoresearch = ane::preset("autoresearch");
    autoresearch.vocab = 16893;
    struct Case {
        const char* name;
        ane::ModelConfig c;
        int batch;
    };
    const Setup setups[] = {{"cpu", "cpu", ane::AneMode::full, false},
                            {"ane-sim full", "ane-sim", ane::AneMode::full, false},
                            {"ane-sim full fp16-acc", "ane-sim", ane::AneMode::full, true},
                            {"ane-sim cpu-bwd", "ane-sim", ane::AneMode::cpu_bwd, false},
                            {"ane-sim matmul", "ane-sim", ane::AneMode::matmul, false}};
    for (const Case& k : {Case{"demo (3.2M, batch 8)", demo, 8}, Case{"autoresearch (batch 2)", autoresearch, 2}}) {
        std::printf("\n%s, %d threads:\n%-24s %10s %10s\n", k.name, ane::set_compute_threads(threads), "device",
                    "ms/step", "vs cpu");
        double cpu_ms = 0;
        std::string kernels;
        for (const Setup& s : setups) {
            const Result r = run(k.c, k.batch, s, threads, steps);
            if (s.device == "cpu") cpu_ms = r.ms;
            if (std::string(s.label) == "ane-sim full") kernels = r.kernels;
            std::printf("%-24s %10.1f %9.2fx\n", s.label, r.ms, r.ms / cpu_ms);
        }
        std::printf("per kernel, ane-sim full (%d warm-up + %d timed steps):\n%s", 1, steps, kernels.c_str());
        auto cpu = ane::make_device("cpu", threads);
        ane::DeviceOptions o;
        o.threads = threads;
        auto sim = ane::make_device("ane-sim", o);
        const auto tc = time_blocks(*cpu, k.c, k.batch, 7), ts = time_blocks(*sim, k.c, k.batch, 7);
        std::printf("each block alone, one layer, batch %d (median of 7, weights re-staged before each):\n"
                    "  %-12s %10s %10s %8s\n", k.batch, "block", "cpu ms", "sim ms", "ratio");
        for (std::size_t i = 0; i < tc.size(); ++i)
            std::printf("  %-12s %10.2f %10.2f %7.2fx\n", tc[i].first.c_str(), tc[i].second, ts[i].second,
                        ts[i].second / tc[i].second);
    }
    return 0;
}
