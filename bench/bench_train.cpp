// End-to-end benchmark of one training step (forward, backward, clipping, AdamW) for the
// autoresearch and stories15m shapes at 1 and 2 threads. For each it prints tokens/s and
// achieved GFLOP/s, and two ratios measured in the same run:
//   ceiling: the time the step's matrix products take alone, replayed at the same shapes on
//            the faster library per shape, divided by the step time (1.0 = nothing but sgemm);
//            blas-ceil the same on OpenBLAS alone;
//   torch:   our tokens/s over bench/torch_peer.py's (PyTorch, same model, threads, tokens).
// Each with --gemm openblas (the suite before oneDNN), --gemm auto (the default) and, where the
// CPU has bf16 instructions, --precision bf16 (its ceiling is still the fp32 products').
// Run with OPENBLAS_CORETYPE unset to get the CPU's best kernels; each case runs in its own
// process so that its peak RSS is its own.
#include "ane/cblas.hpp"
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "ane/device/bf16_gemm_avx512.hpp"
#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/model/init.hpp"
#include "ane/model/transformer.hpp"
#include "ane/optim.hpp"
#include "ane/progress.hpp"
#include "ane/runtime.hpp"
#include "bench_stats.hpp"
#include "cpu_info.hpp"
#include "recording_device.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
    const char* name;
    ane::ModelConfig config;
    int batch;
};

Case make_case(const std::string& name) {
    if (name == "autoresearch") {
        ane::ModelConfig c = ane::preset("autoresearch");
        c.vocab = 16893;  // the compact vocabulary of the SmolLM2 TinyStories file
        return {"autoresearch", c, 8};
    }
    if (name == "stories15m") return {"stories15m", ane::preset("stories15m"), 4};
    std::fprintf(stderr, "unknown case %s\n", name.c_str());
    std::exit(2);
}

// Current resident set, from /proc/self/statm.
double current_rss_mb() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return double(resident) * double(sysconf(_SC_PAGESIZE)) / 1e6;
}

int run_case(const std::string& case_name, int threads, int steps, const std::string& gemm) {
    const Case cs = make_case(case_name);
    const ane::ModelConfig& c = cs.config;
    // "bf16": the default library choice with bf16 products (--precision bf16), our kernel where
    // it runs; "bf16-onednn": oneDNN's bf16 products (--gemm onednn --precision bf16).
    const bool bf16 = gemm == "bf16" || gemm == "bf16-onednn";
    const std::string library = gemm == "bf16" ? "auto" : gemm == "bf16-onednn" ? "onednn" : gemm;
    auto dev = std::make_unique<RecordingDevice>(
        ane::make_device("cpu", ane::device_options(threads, "full", library, bf16 ? "bf16" : "fp32")));
    RecordingDevice& device = *dev;
    ane::Weights w = ane::init_weights(c, 42);
    ane::Transformer model(w, device, cs.batch, ane::VocabMap::identity(c.vocab));
    ane::Weights grads = ane::Weights::zeros(c);
    ane::AdamMoments moments = ane::AdamMoments::zeros(c);
    const int T = cs.batch * c.seq;
    std::mt19937 rng(1);
    std::vector<std::int32_t> inputs(T), targets(T);
    auto step = [&](int t) {
        for (int i = 0; i < T; ++i) {
            inputs[i] = int(rng() % c.vocab);
            targets[i] = int(rng() % c.vocab);
        }
        ane::zero_grads(grads);
        model.forward(inputs.data(), cs.batch, c.seq);
        model.loss_and_dlogits(targets.data(), 256.0f);
        model.backward(grads);
        const double norm = ane::global_grad_norm(grads) / 256.0;
        ane::adamw_update(w, grads, moments, t, 3e-4f, {}, float((1.0 / 256.0) * (norm > 1.0 ? 1.0 / norm : 1.0)));
        model.weights_changed();
    };
    step(1);
    device.recording = false;
    step(2);
    device.inner_profile().reset();
    device.profile().reset();
    const double rss_before = current_rss_mb();
    std::vector<double> times;
    for (int i = 0; i < steps; ++i) {
        const auto t0 = Clock::now();
        step(3 + i);
        times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    const double step_s = median(times);
    const double rss_growth = current_rss_mb() - rss_before;
    ane::DeviceProfile prof = device.inner_profile();
    prof.elementwise_s = device.profile().elementwise_s;  // the model times its kernels on the outer device
    const double flops_per_step = (prof.matmul_flops + prof.attention_flops) / steps;

    // The sgemm ceiling: the same products, back to back, on the faster library per shape;
    // and on OpenBLAS alone (the ceiling before oneDNN).
    std::vector<float> A, Bm, C;
    auto ceiling = [&](ane::GemmLibrary library) {
        ane::Gemm gemm(library);
        replay_gemms(device.shapes, A, Bm, C, gemm);
        std::vector<double> gemm_times;
        for (int i = 0; i < std::max(3, steps); ++i) {
            const auto t0 = Clock::now();
            replay_gemms(device.shapes, A, Bm, C, gemm);
            gemm_times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        }
        return median(gemm_times);
    };
    const double gemm_s = ceiling(ane::GemmLibrary::automatic);
    const double blas_s = ceiling(ane::GemmLibrary::blas);

    nlohmann::json out = {{"case", cs.name},
                          {"threads", threads},
                          {"tokens_per_update", T},
                          {"params", c.params()},
                          {"ms_per_step", step_s * 1000},
                          {"tokens_per_second", T / step_s},
                          {"gflops", flops_per_step / step_s / 1e9},
                          {"sgemm_ms", gemm_s * 1000},
                          {"sgemm_gflops", prof.matmul_flops / steps / gemm_s / 1e9},
                          {"ceiling_ratio", gemm_s / step_s},
                          {"blas_ceiling_ratio", blas_s / step_s},
                          {"attention_ms", prof.attention_s / steps * 1000},
                          {"share_matmul", prof.matmul_s / steps / step_s},
                          {"share_attention", prof.attention_s / steps / step_s},
                          {"share_elementwise", prof.elementwise_s / steps / step_s},
                          {"peak_rss_mb", ane::peak_rss_bytes() / 1e6},
                          {"rss_growth_mb", rss_growth},
                          {"device", device.describe()}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

nlohmann::json run_json(const std::string& cmd) {
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {};
    std::string text;
    char buf[4096];
    while (std::fgets(buf, sizeof(buf), p)) text += buf;
    pclose(p);
    const auto start = text.rfind('{');
    if (start == std::string::npos) return {};
    return nlohmann::json::parse(text.substr(start), nullptr, false);
}

std::string self_path() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    return n > 0 ? std::string(buf, std::size_t(n)) : "bench_train";
}

}  // namespace

constexpr const char* kUsage =
    "usage: bench_train [--steps N] [--no-torch]    every case, thread count and library, beside PyTorch\n"
    "       bench_train [--steps N] --case NAME THREADS openblas|onednn|auto|bf16|bf16-onednn    one JSON line\n"
    "       bench_train [--steps N] --attention-spread PROCESSES    attention time across processes\n";

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);  // as the tools run
    int steps = 5;
    std::string peer = std::string(ANE_SOURCE_DIR) + "/bench/torch_peer.py";
    bool with_torch = true;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--case" && i + 3 < argc) return run_case(argv[i + 1], std::atoi(argv[i + 2]), steps, argv[i + 3]);
        if (a == "--help" || a == "-h") {
            std::printf("%s", kUsage);
            return 0;
        }
        if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
        else if (a == "--no-torch") with_torch = false;
        else if (a == "--attention-spread" && i + 1 < argc) {
            // Attention time of the default setting in N separate processes, 1 and 2 threads.
            const int n = std::atoi(argv[++i]);
            for (const std::string name : {"autoresearch", "stories15m"})
                for (int threads : {1, 2}) {
                    std::vector<double> ms;
                    for (int r = 0; r < n; ++r) {
                        const auto j = run_json(self_path() + " --steps " + std::to_string(steps) + " --case " + name +
                                                " " + std::to_string(threads) + " auto");
                        if (!j.is_discarded() && j.contains("attention_ms")) ms.push_back(j["attention_ms"].get<double>());
                    }
                    if (ms.empty()) continue;
                    const auto [lo, hi] = std::minmax_element(ms.begin(), ms.end());
                    std::printf("attention %-13s %d thread(s), %zu processes: %.1f .. %.1f ms per step (spread %.0f%%)\n",
                                name.c_str(), threads, ms.size(), *lo, *hi, 100.0 * (*hi - *lo) / *lo);
                    std::fflush(stdout);
                }
            return 0;
        } else {
            std::fprintf(stderr, "bench_train: unknown argument '%s'\n%s", a.c_str(), kUsage);
            return 1;
        }
    }
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("bench_train: %s; OPENBLAS_CORETYPE=%s; median of %d steps\n", cpu_model().c_str(),
                coretype ? coretype : "(unset)", steps);
    std::printf("%-13s %3s %-11s %9s %9s %8s %8s %9s %8s %10s %8s %8s\n", "case", "thr", "gemm", "ms/step", "tok/s",
                "GFLOP/s", "ceiling", "blas-ceil", "attn ms", "torch tok/s", "vs torch", "RSS MB");
    // The tuned peer: tcmalloc preloaded where Debian's libtcmalloc is installed.
    const char* tcmalloc_path = "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4";
    const std::string tcmalloc = access(tcmalloc_path, R_OK) == 0 ? std::string("LD_PRELOAD=") + tcmalloc_path + " " : "";
    std::printf("torch peer: PyTorch with OpenBLAS, %s, OMP_WAIT_POLICY=%s\n",
                tcmalloc.empty() ? "glibc malloc (no libtcmalloc)" : "tcmalloc", std::getenv("OMP_WAIT_POLICY"));
    for (const std::string name : {"autoresearch", "stories15m"})
        for (int threads : {1, 2}) {
            double torch_tps = 0;
            if (with_torch) {
                const Case cs = make_case(name);
                const auto& c = cs.config;
                char cmd[1024];
                std::snprintf(cmd, sizeof(cmd),
                              "%s/usr/bin/python3 %s --dim %d --hidden %d --heads %d --kv-heads %d --head-dim %d "
                              "--layers %d --vocab %d --seq %d --batch %d --threads %d --steps %d 2>/dev/null",
                              tcmalloc.c_str(), peer.c_str(), c.dim, c.hidden, c.heads, c.kv_heads, c.head_dim, c.layers, c.vocab, c.seq,
                              cs.batch, threads, std::max(3, steps / 2));
                const auto t = run_json(cmd);
                if (!t.is_discarded() && t.contains("tokens_per_second")) torch_tps = t["tokens_per_second"].get<double>();
            }
            std::vector<std::string> settings{"openblas", "auto"};
            if (const std::string why = ane::bf16_missing(); why.empty()) {
                settings.push_back("bf16");
                if (ane::bf16::available()) settings.push_back("bf16-onednn");  // "bf16" ran our kernel
            } else
                std::printf("    (no bf16 row: %s)\n", why.c_str());
            for (const std::string& gemm : settings) {
                const auto ours = run_json(self_path() + " --steps " + std::to_string(steps) + " --case " + name + " " +
                                           std::to_string(threads) + " " + gemm);
                if (ours.is_discarded() || ours.empty()) {
                    std::printf("%s: the benchmark process failed\n", name.c_str());
                    continue;
                }
                const double tps = ours["tokens_per_second"].get<double>();
                std::printf("%-13s %3d %-11s %9.1f %9.0f %8.1f %8.2f %9.2f %8.1f %10.0f %8.2f %8.0f\n", name.c_str(),
                            threads, gemm.c_str(), ours["ms_per_step"].get<double>(), tps, ours["gflops"].get<double>(),
                            ours["ceiling_ratio"].get<double>(), ours["blas_ceiling_ratio"].get<double>(),
                            ours["attention_ms"].get<double>(), torch_tps, torch_tps > 0 ? tps / torch_tps : 0.0,
                            ours["peak_rss_mb"].get<double>());
                std::printf("    time: matmul %.0f%%, attention %.0f%%, elementwise %.0f%%; products alone %.1f "
                            "GFLOP/s; RSS growth over the timed steps %.1f MB\n",
                            100 * ours["share_matmul"].get<double>(), 100 * ours["share_attention"].get<double>(),
                            100 * ours["share_elementwise"].get<double>(), ours["sgemm_gflops"].get<double>(),
                            ours["rss_growth_mb"].get<double>());
                std::fflush(stdout);
            }
        }
    std::printf("device: %s\n", ane::make_device("cpu", 1)->describe().c_str());
    return 0;
}
