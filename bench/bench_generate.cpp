// Generation speed at batch 1: prompt tokens/s and generated tokens/s for stories260K (GGUF)
// and random models of the stories15M and stories110M shapes written as F32, Q8_0 and Q4_0
// GGUFs, at 1 and 2 threads, beside llama.cpp's llama-bench on the same files when it is
// found. Decoding one token reads every weight once, so it is memory-bound: the achieved GB/s
// of weight traffic is printed next to the machine's copy bandwidth, measured in the same run.
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu_info.hpp"
#include "ane/device/matvec.hpp"
#include "ane/device/quant_matvec.hpp"
#include "ane/device/device.hpp"
#include "ane/checkpoint.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/gguf_tokenizer.hpp"
#include "ane/tokenizer.hpp"
#include "ane/model/decoder.hpp"
#include "ane/model/inference_weights.hpp"
#include "ane/model/init.hpp"
#include "ane/runtime.hpp"
#include "ane/sampler.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// Greedy choice as ane-generate makes it (--temperature 0).
ane::Sampler greedy_sampler(int vocab) {
    ane::SamplerConfig c;
    c.temperature = 0;
    return ane::Sampler(c, vocab);
}
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Read + write bandwidth of a large memcpy (GB/s counting both directions).
double copy_bandwidth() {
    const std::size_t n = std::size_t(256) << 20;
    std::vector<char> a(n, 1), b(n, 0);
    std::memcpy(b.data(), a.data(), n);
    double best = 0;
    for (int i = 0; i < 5; ++i) {
        const auto t0 = Clock::now();
        std::memcpy(b.data(), a.data(), n);
        best = std::max(best, 2.0 * double(n) / since(t0) / 1e9);
    }
    return best;
}

// One process spinning on one core until destroyed: a busy machine.
struct Burner {
    pid_t pid = fork();
    Burner() {
        if (pid == 0) {
            volatile unsigned long x = 0;
            for (;;) x = x + 1;
        }
    }
    ~Burner() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

// Generated tokens/s (the last column's reference is the first run of each model and thread count).
struct Speed {
    double prompt = 0, gen = 0;
};
// The bytes one decoded token reads: every layer matrix and the output matrix (of the
// embedding, one row).
double bytes_per_token(const ane::InferenceWeights& w) {
    double bytes = double(w.output().bytes());
    for (const auto& L : w.layers)
        for (const ane::QuantMatrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w2, &L.w3}) bytes += double(m->bytes());
    return bytes;
}

Speed run(const char* name, const ane::InferenceWeights& w, int threads, const std::string& gemm, double bw,
          double base, const std::string& note = "") {
    auto dev = ane::make_device("cpu", ane::device_options(threads, "full", gemm));
    const int ctx = 256, prompt = 64, gen = 128;
    const int vocab = w.config().vocab;
    ane::Decoder d(w, *dev, ctx, 512, 1, ane::KvCache::f16);  // ane-generate's default, as llama-bench's
    std::vector<std::int32_t> tokens(prompt);
    for (int i = 0; i < prompt; ++i) tokens[std::size_t(i)] = (i * 7 + 1) % vocab;
    d.feed(tokens.data(), prompt);  // warm up
    // The prompt's tokens/s as llama-bench reports them: the mean over repetitions (one 64-token
    // prompt of a small model takes a few ms, and one descheduled product shows).
    constexpr int kPromptReps = 5;
    double prompt_tps = 0;
    const float* z = nullptr;
    for (int rep = 0; rep < kPromptReps; ++rep) {
        d.reset();
        const auto p0 = Clock::now();
        z = d.feed(tokens.data(), prompt);
        prompt_tps += prompt / since(p0) / kPromptReps;
    }
    ane::Sampler greedy = greedy_sampler(vocab);
    auto t0 = Clock::now();
    for (int i = 0; i < gen; ++i) {
        const std::int32_t next = greedy.sample(z, {});
        z = d.feed(&next, 1);
    }
    const double gen_s = since(t0);
    const double weight_bytes = bytes_per_token(w);
    const double tps = gen / gen_s;
    std::printf("%-13s %-5s %3d %-9s %12.0f %12.1f %10.2f %9.2f %9.2f%s\n", name, w.layers[0].w1.type_name().c_str(),
                threads, gemm.c_str(), prompt_tps, tps, weight_bytes * tps / 1e9, weight_bytes * tps / 1e9 / bw,
                base > 0 ? tps / base : 1.0, note.c_str());
    std::fflush(stdout);
    return {prompt_tps, tps};
}

// Batch decoding (--prompt-file): `sequences` prompts of 16 tokens, then 64 steps of one token
// each in one product, against the same steps one sequence at a time; aggregate tokens/s.
void batch_decoding(const char* name, const ane::InferenceWeights& w, int threads, int sequences) {
    auto dev = ane::make_device("cpu", ane::device_options(threads, "full", "auto"));
    const int vocab = w.config().vocab, steps = 64;
    ane::Decoder d(w, *dev, 128, 512, sequences, ane::KvCache::f16);
    std::vector<std::int32_t> prompt(16), next(static_cast<std::size_t>(sequences));
    std::vector<int> seqs(static_cast<std::size_t>(sequences));
    ane::Sampler greedy = greedy_sampler(vocab);
    auto run = [&](bool batched) {
        for (int s = 0; s < sequences; ++s) {
            for (int i = 0; i < 16; ++i) prompt[std::size_t(i)] = (i * 7 + s * 13 + 1) % vocab;
            d.reset(s);
            d.feed(prompt.data(), 16, nullptr, s);
            seqs[std::size_t(s)] = s;
            next[std::size_t(s)] = (s * 31 + 5) % vocab;
        }
        const auto t0 = Clock::now();
        for (int k = 0; k < steps; ++k) {
            if (batched) {
                const float* z = d.feed_batch(next.data(), seqs.data(), sequences);
                for (int s = 0; s < sequences; ++s) {
                    const float* row = z + std::size_t(s) * vocab;
                    next[std::size_t(s)] = greedy.sample(row, {});
                }
            } else {
                for (int s = 0; s < sequences; ++s) {
                    const float* z = d.feed(&next[std::size_t(s)], 1, nullptr, s);
                    next[std::size_t(s)] = greedy.sample(z, {});
                }
            }
        }
        return double(steps) * sequences / since(t0);
    };
    run(true);  // warm up
    const double alone = run(false), together = run(true);
    std::printf("%-13s %-5s %3d batch of %d: %8.1f tok/s one sequence at a time, %8.1f tok/s in one product "
                "per step (%.2fx)\n",
                name, w.layers[0].w1.type_name().c_str(), threads, sequences, alone, together, together / alone);
    std::fflush(stdout);
}

// llama.cpp's llama-bench: LLAMA_BENCH, else on PATH; empty when absent.
std::string find_llama_bench() {
    if (const char* env = std::getenv("LLAMA_BENCH"); env && *env) return env;
    if (std::system("command -v llama-bench >/dev/null 2>&1") == 0) return "llama-bench";
    return {};
}

// llama.cpp's llama-quantize (LLAMA_QUANTIZE, else beside llama-bench, else on PATH), which
// makes the K-quant files both sides read; empty when absent.
std::string find_llama_quantize(const std::string& bench) {
    if (const char* env = std::getenv("LLAMA_QUANTIZE"); env && *env) return env;
    const auto slash = bench.rfind('/');
    if (slash != std::string::npos) {
        const std::string beside = bench.substr(0, slash + 1) + "llama-quantize";
        if (access(beside.c_str(), X_OK) == 0) return beside;
    }
    if (std::system("command -v llama-quantize >/dev/null 2>&1") == 0) return "llama-quantize";
    return {};
}

// llama-bench's prompt and generation tokens/s on a GGUF (-p 64 -n 128, as here), or {0, 0}.
std::pair<double, double> llama_bench(const std::string& exe, const std::string& gguf, int threads) {
    // llama.cpp as its users run it: its OpenMP threads spin (the tools here set a passive wait).
    const std::string cmd = "env -u OMP_WAIT_POLICY " + exe + " -m " + gguf + " -p 64 -n 128 -r 3 -t " + std::to_string(threads) +
                            " -o json 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return {0, 0};
    std::string text;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) text += buf;
    pclose(p);
    const auto j = nlohmann::json::parse(text, nullptr, false);
    double pp = 0, tg = 0;
    if (j.is_array())
        for (const auto& r : j) {
            if (!r.contains("avg_ts")) continue;
            if (r.value("n_prompt", 0) > 0) pp = r["avg_ts"].get<double>();
            if (r.value("n_gen", 0) > 0) tg = r["avg_ts"].get<double>();
        }
    return {pp, tg};
}

// The K-quants as users download them: llama-quantize makes Q4_K_M (Q4_K with some Q6_K) and
// Q6_K files from the F32 GGUF at `f32_path`; ours against llama.cpp on the same files, and
// "vs base" against our F32 at the same thread count.
void k_quant_rows(const char* shape, const std::string& f32_path, const std::string& quantize, const std::string& llama,
                  double bw, const std::map<int, double>& f32_speed) {
    for (const char* kind : {"Q4_K_M", "Q6_K"}) {
        const std::string path = f32_path + "." + kind;
        if (std::system((quantize + " " + f32_path + " " + path + " " + kind + " >/dev/null 2>&1").c_str()) != 0) {
            std::printf("(%s %s skipped: llama-quantize failed)\n", shape, kind);
            continue;
        }
        std::optional<ane::InferenceModel> m;
        try {
            m.emplace(ane::load_inference_model(path, std::nullopt));
        } catch (const std::exception& e) {
            std::printf("(%s %s skipped: %s)\n", shape, kind, e.what());
            std::remove(path.c_str());
            continue;
        }
        std::printf("%s %s: %s\n", shape, kind, m->weights.summary().c_str());
        for (int threads : {1, 2}) {
            const auto base = f32_speed.find(threads);
            const Speed us = run(shape, m->weights, threads, "auto", bw, base == f32_speed.end() ? 0 : base->second,
                                 std::string("  (") + kind + ")");
            const auto [pp, tg] = llama_bench(llama, path, threads);
            std::printf("%-13s %-6s %2d %-9s %12.0f %12.1f   ours / llama.cpp: prompt %.2f, decode %.2f\n", shape, kind,
                        threads, "llama.cpp", pp, tg, pp > 0 ? us.prompt / pp : 0.0, tg > 0 ? us.gen / tg : 0.0);
            std::fflush(stdout);
        }
        std::remove(path.c_str());
    }
}

}  // namespace

constexpr const char* kUsage =
    "usage: bench_generate [--shape stories15m|stories110m] [--type F32|Q8_0|Q4_0]\n"
    "  every shape and weight type by default (and stories260K); llama.cpp's llama-bench is found on PATH or\n"
    "  through LLAMA_BENCH, llama-quantize beside it or through LLAMA_QUANTIZE\n";

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    std::string only_shape, only_type;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::printf("%s", kUsage);
            return 0;
        }
        if (a == "--shape" && i + 1 < argc) only_shape = argv[++i];
        else if (a == "--type" && i + 1 < argc) only_type = argv[++i];
        else {
            std::fprintf(stderr, "bench_generate: unknown argument '%s'\n%s", a.c_str(), kUsage);
            return 1;
        }
    }
    const double bw = copy_bandwidth();
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    const char* max_isa = std::getenv("ANE_MAX_CPU_ISA");
    const std::string cap = max_isa ? std::string(", ANE_MAX_CPU_ISA=") + max_isa : "";
    std::printf("bench_generate: %s; OPENBLAS_CORETYPE=%s\n", cpu_model().c_str(), coretype ? coretype : "(unset)");
    std::printf("prompt 64 tokens (mean of 5), then 128 generated (greedy), fp16 key/value cache (both sides); "
                "memcpy bandwidth %.1f GB/s (read + write); decode kernel %s (int8: %s)%s\n", bw,
                ane::matvec_isa_name(ane::best_matvec_isa()), ane::int8_dot_name(ane::best_int8_dot()), cap.c_str());
    std::printf("%-13s %-5s %3s %-9s %12s %12s %10s %9s %9s\n", "model", "type", "thr", "gemm", "prompt tok/s",
                "gen tok/s", "weight GB/s", "vs memcpy", "vs base");
    // llama.cpp reads the same GGUF files (with Llama 2's vocabulary, which it needs to load).
    const std::string llama = find_llama_bench();
    const std::string quantize = llama.empty() ? std::string() : find_llama_quantize(llama);
    if (!llama.empty() && quantize.empty())
        std::printf("(K-quant rows skipped: no llama-quantize beside llama-bench, on PATH or in LLAMA_QUANTIZE)\n");
    const std::string spm = std::string(ANE_SOURCE_DIR) + "/../shared/data/tokenizer-llama2-sentencepiece/tokenizer.model";
    std::vector<std::pair<std::string, ane::GgufValue>> vocab;
    if (llama.empty())
        std::printf("(llama.cpp rows skipped: no llama-bench on PATH and LLAMA_BENCH unset)\n");
    else if (!std::ifstream(spm))
        std::printf("(llama.cpp rows skipped: %s is absent)\n", spm.c_str());
    else
        vocab = ane::gguf_metadata_from_tokenizer(*ane::load_tokenizer(spm), 32000);

    const std::string gguf = std::string(ANE_SOURCE_DIR) + "/../shared/data/stories260K-gguf/stories260K.gguf";
    if (only_shape.empty() && only_type.empty()) {
        try {
            const ane::InferenceModel m = ane::load_inference_model(gguf, std::nullopt);
            for (int threads : {1, 2}) {
                const double base = run("stories260K", m.weights, threads, "openblas", bw, 0).gen;
                run("stories260K", m.weights, threads, "auto", bw, base);
            }
        } catch (const std::exception& e) {
            std::printf("(stories260K skipped: %s)\n", e.what());
        }
    }
    // "vs base": F32 against OpenBLAS's sgemv (the suite before its own kernel), Q8_0 and Q4_0
    // against our F32 at the same thread count.
    for (const char* shape : {"stories15m", "stories110m"}) {
        if (!only_shape.empty() && only_shape != shape) continue;
        ane::Checkpoint ck;
        ck.weights = ane::init_weights(ane::preset(shape), 1);
        std::map<int, double> f32_speed;
        for (auto [type, type_name] : {std::pair{ane::GgufExportType::F32, "F32"}, {ane::GgufExportType::Q8_0, "Q8_0"},
                                       {ane::GgufExportType::Q4_0, "Q4_0"}}) {
            if (!only_type.empty() && only_type != type_name) continue;
            char path[] = "/tmp/bench_generate_XXXXXX";
            const int fd = mkstemp(path);
            if (fd < 0) continue;
            close(fd);
            ane::write_gguf_model(ck, vocab, type, path);
            const ane::InferenceModel m = ane::load_inference_model(path, std::nullopt);
            for (int threads : {1, 2}) {
                double base = 0;
                if (type == ane::GgufExportType::F32) {
                    base = run(shape, m.weights, threads, "openblas", bw, 0).gen;
                } else {
                    base = f32_speed[threads];
                }
                const Speed us = run(shape, m.weights, threads, "auto", bw, base);
                if (type == ane::GgufExportType::F32) f32_speed[threads] = us.gen;
                if (vocab.empty()) continue;
                const auto [pp, tg] = llama_bench(llama, path, threads);
                std::printf("%-13s %-5s %3d %-9s %12.0f %12.1f   ours / llama.cpp: prompt %.2f, decode %.2f\n", shape,
                            type_name, threads, "llama.cpp", pp, tg, pp > 0 ? us.prompt / pp : 0.0,
                            tg > 0 ? us.gen / tg : 0.0);
                std::fflush(stdout);
            }
            if (type == ane::GgufExportType::F32 && !quantize.empty())
                k_quant_rows(shape, path, quantize, llama, bw, f32_speed);
            if (std::string(shape) == "stories110m") batch_decoding(shape, m.weights, 2, 8);
            // A busy machine: another process spinning on one of the cores.
            {
                Burner burner;
                const double one = run(shape, m.weights, 1, "auto", bw, 0, "  (one core busy)").gen;
                run(shape, m.weights, 2, "auto", bw, one, "  (one core busy; vs the 1-thread run beside it)");
            }
            std::remove(path);
        }
    }
    std::printf("device: %s\n", ane::make_device("cpu", 1)->describe().c_str());
    return 0;
}
