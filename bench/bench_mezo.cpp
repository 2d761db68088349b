// MeZO's two claims, measured on the stories110M shape (random weights, seq 256):
//  1. a step costs about two forward passes: ms/step against the forward time of the same
//     model measured in this run (full-parameter with copy or arithmetic restore, LoRA-split);
//  2. its memory stays near inference: peak RSS of ane-mezo against ane-train on the same
//     checkpoint and data, from the tools' own reports.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"
#include "ane/mezo/mezo_trainer.hpp"
#include "ane/mezo/perturbed_weights.hpp"
#include "ane/mezo/spsa.hpp"
#include "ane/model/init.hpp"
#include "ane/model/transformer.hpp"
#include "ane/runtime.hpp"
#include "bench_stats.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double report_value(const std::string& out, const std::string& key) {
    const auto at = out.find("\n" + key + ": ");
    return at == std::string::npos ? -1.0 : std::atof(out.c_str() + at + key.size() + 3);
}

std::string capture(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    const int threads = 2, steps = 4, rounds = 7;
    int batch = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--batch" && i + 1 < argc && std::atoi(argv[i + 1]) > 0) {
            batch = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr, "usage: bench_mezo [--batch N]    windows of 256 tokens per loss (default 1)\n");
            return a == "--help" || a == "-h" ? 0 : 1;
        }
    }
    ane::ModelConfig c = ane::preset("stories110m");
    c.seq = 256;
    ane::Weights w = ane::init_weights(c, 1);
    std::mt19937 rng(3);
    const int tokens = batch * c.seq;
    std::vector<std::int32_t> inputs(static_cast<std::size_t>(tokens)), targets(static_cast<std::size_t>(tokens));
    for (int t = 0; t < tokens; ++t) {
        inputs[std::size_t(t)] = int(rng() % std::uint32_t(c.vocab));
        targets[std::size_t(t)] = int(rng() % std::uint32_t(c.vocab));
    }
    std::printf("bench_mezo: stories110M shape (%.1fM parameters), seq %d, batch %d, %d threads\n", c.params() / 1e6,
                c.seq, batch, threads);
    std::printf("device: %s\n\n", ane::blas_description().c_str());

    auto device = ane::make_device("cpu", threads);
    ane::Transformer model(w, *device, batch, ane::VocabMap::identity(c.vocab), /*for_training=*/false);
    auto loss = [&] {
        model.forward(inputs.data(), batch, c.seq);
        return model.loss(targets.data());
    };
    loss();  // warm up
    auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) loss();
    std::printf("forward pass (with loss): %.1f ms\n", since(t0) / steps * 1e3);
    std::printf("%-48s %10s %10s %14s %12s\n", "MeZO step", "fwd ms", "ms/step", "forward passes", "perturb ms");

    ane::Lora lora = ane::Lora::init(c, 8, ane::parse_lora_targets("attn"), 42);
    // Each case runs its sweeps sequentially and with z drawn once, or (one_way) only as the tool runs it.
    struct Case {
        const char* name;
        bool use_lora, exact, viewed = false, in_place = false;
    };
    for (const Case& k : {Case{"full-parameter, copy restore", false, true}, Case{"full-parameter, arithmetic restore", false, false},
                          Case{"full-parameter, arithmetic restore deferred", false, false, false, true},
                          Case{"full-parameter, perturbed per product", false, true, true},
                          Case{"LoRA-split r8 attn, copy restore", true, true}}) {
        model.set_lora(k.use_lora ? &lora : nullptr);
        const auto params = ane::mezo_parameters(w, k.use_lora ? &lora : nullptr);
        ane::ParamSnapshot snapshot;
        auto sync = [&] {
            if (!k.use_lora) model.weights_changed();
        };
        const ane::SpsaHooks hooks{loss, sync, k.exact ? &snapshot : nullptr};
        double in_forward = 0;
        auto timed_loss = [&] {
            const auto f0 = Clock::now();
            const double l = loss();
            in_forward += since(f0);
            return l;
        };
        const ane::SpsaHooks timed{timed_loss, sync, hooks.snapshot};
        ane::spsa_two_sided(params, 1, 1e-3f, ane::Direction::Rademacher, hooks);  // warm up, allocate
        // The baseline, measured in the same run: the sequential sweeps (z redrawn for each of
        // +ε, −2ε, the restore and the update), against z drawn once with the restore and the
        // update fused into one sweep on all threads (what ane-mezo runs).
        // And (what ane-mezo runs on the cpu device) θ never perturbed in place: each weight
        // read as θ ± εz made (a panel of rows at a time) just before its product, the update
        // deferred into the next step's first views. And (ane-mezo --restore arithmetic) θ
        // perturbed in place, the restore and the update deferred into the next step's +εz sweep.
        const bool one_way = k.viewed || k.in_place;
        for (const bool fused : one_way ? std::vector<bool>{true} : std::vector<bool>{false, true}) {
            ane::StepDirection z;
            ane::PerturbedWeights viewed;
            model.set_weight_source(k.viewed ? &viewed : nullptr);
            const auto one_step = [&](int s) {
                const std::uint64_t seed = std::uint64_t(s) * 1000003u + 42u;
                const auto update = [](const ane::SpsaEstimate& e) {
                    return ane::ZoUpdate{-1e-9f * float(e.proj_grad), 0.0f};
                };
                if (k.viewed) {
                    ane::spsa_two_sided_viewed(params, seed, 1e-3f, timed_loss, viewed, update);
                } else if (k.in_place) {
                    ane::spsa_two_sided_in_place(params, seed, 1e-3f, timed, viewed, update);
                } else if (fused) {
                    ane::spsa_two_sided_update(params, seed, 1e-3f, ane::Direction::Rademacher, timed, z, update);
                } else {
                    const auto e = ane::spsa_two_sided(params, seed, 1e-3f, ane::Direction::Rademacher, timed);
                    ane::zo_update(params, seed, -1e-9f * float(e.proj_grad), ane::Direction::Rademacher);
                }
                sync();
            };
            // An untimed step first: z's bits and the views' buffers (the classifier's 98 MB)
            // are allocated once per run, and their page faults are no part of a step.
            one_step(rounds);
            // The baseline, interleaved with the steps (this host's speed drifts): a forward pass
            // of this model in this configuration, reading θ in place. Medians of each.
            std::vector<double> fwd_ms, step_ms, outside_ms;
            for (int s = 0; s < rounds; ++s) {
                model.set_weight_source(nullptr);
                t0 = Clock::now();
                loss();
                fwd_ms.push_back(since(t0) * 1e3);
                model.set_weight_source(k.viewed ? &viewed : nullptr);
                in_forward = 0;
                t0 = Clock::now();
                one_step(s);
                step_ms.push_back(since(t0) * 1e3);
                outside_ms.push_back(step_ms.back() - in_forward * 1e3);
            }
            viewed.flush();  // the last step's update, deferred (each timed step applied one)
            sync();
            model.set_weight_source(nullptr);
            const double fwd = median(fwd_ms), step = median(step_ms);
            std::printf("%-48s %10.1f %10.1f %14.2f %12.1f\n",
                        (std::string(k.name) + (one_way ? "" : fused ? ", z once" : ", sequential")).c_str(), fwd,
                        step, step / fwd, median(outside_ms));
            std::fflush(stdout);
        }
    }
    model.set_lora(nullptr);

    // The sweeps of a viewed step without its products (every tensor's view made as the
    // forward would, twice, and the update): the update swept on its own after the step, as
    // before, against the update deferred into the next step's +ε views (what ane-mezo runs).
    {
        const auto params = ane::mezo_parameters(w, nullptr);
        ane::PerturbedWeights viewed;
        const auto views_only = [&] {
            w.for_each([&](const std::string&, ane::Tensor& t) { viewed.view(t); });
            return 0.0;
        };
        const auto update = [](const ane::SpsaEstimate&) { return ane::ZoUpdate{-1e-9f, 0.0f}; };
        std::printf("\n%-48s %10s %10s\n", "sweeps of a viewed step, no products", "ms/step", "vs swept");
        double swept_ms = 0;
        for (const bool deferred : {false, true}) {
            std::vector<double> ms;
            for (int s = 0; s < 4 * steps + 1; ++s) {
                t0 = Clock::now();
                ane::spsa_two_sided_viewed(params, std::uint64_t(s), 1e-3f, views_only, viewed, update);
                if (!deferred) viewed.flush();
                if (s > 0) ms.push_back(since(t0) * 1e3);  // the first allocates the views
            }
            viewed.flush();
            const double mid = median(ms);
            if (!deferred) swept_ms = mid;
            std::printf("%-48s %10.1f %10.2f\n",
                        deferred ? "update deferred into the next +eps views" : "update swept after the step", mid,
                        mid / swept_ms);
        }
    }

    // Peak RSS of the tools on the same checkpoint and tokens.
    const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("bench_mezo." + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string ckpt = (dir / "model.bin").string(), data = (dir / "tokens.bin").string();
    {
        ane::Checkpoint ck;
        ck.weights = w;
        ane::write_blzt(ck, ckpt);
        std::vector<std::uint16_t> toks(200000);
        for (auto& t : toks) t = std::uint16_t(rng() % std::uint32_t(c.vocab));
        ane::AtomicWriter out(data);
        out.write(toks.data(), toks.size() * 2);
        out.commit();
    }
    const std::string common = " --init " + ckpt + " --data " + data + " --steps 2 --eval-every 0 --threads " +
                               std::to_string(threads) + " -q -f -o " + (dir / "out.bin").string();
    struct Tool {
        const char* name;
        std::string cmd;
    };
    const Tool tools[] = {
        {"ane-train --batch 1", std::string(ANE_TRAIN_BIN) + common + " --batch 1"},
        {"ane-train --batch 8 (default)", std::string(ANE_TRAIN_BIN) + common},
        {"ane-mezo (full, perturbed per product)", std::string(ANE_MEZO_BIN) + common},
        {"ane-mezo --direction gaussian (copy)", std::string(ANE_MEZO_BIN) + common + " --direction gaussian"},
        {"ane-mezo --lora split", std::string(ANE_MEZO_BIN) + common + " --lora split"},
        {"ane-train --batch 1 --lora-rank 8", std::string(ANE_TRAIN_BIN) + common + " --batch 1 --lora-rank 8"},
    };
    std::printf("\n%-36s %12s %12s %14s\n", "peak RSS", "MB", "vs train b1", "ms/step");
    double train_rss = 0;
    for (const Tool& t : tools) {
        const std::string out = capture(t.cmd + " 2>&1");
        const double rss = report_value(out, "peak_rss_mb");
        const double ms = 1000.0 * report_value(out, "training_seconds") / 2.0;
        if (train_rss == 0) train_rss = rss;
        std::printf("%-36s %12.1f %12.2f %14.1f\n", t.name, rss, rss / train_rss, ms);
        if (rss < 0) std::printf("  (failed: %s)\n", out.c_str());
        std::fflush(stdout);
    }
    std::filesystem::remove_all(dir);
    return 0;
}
