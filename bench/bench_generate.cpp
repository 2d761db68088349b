// Generation speed at batch 1: prompt tokens/s and generated tokens/s for stories260K (GGUF)
// and random models of the stories15M and stories110M shapes, at 1 and 2 threads. Decoding one
// token reads every weight once, so it is memory-bound: the achieved GB/s of weight traffic is
// printed next to the machine's copy bandwidth, measured in the same run.
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <vector>

#include "ane/device/device.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/model/decoder.hpp"
#include "ane/model/init.hpp"
#include "ane/runtime.hpp"

namespace {

using Clock = std::chrono::steady_clock;
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

void run(const char* name, const ane::Weights& w, int threads) {
    auto dev = ane::make_device("cpu", threads);
    const int ctx = 256, prompt = 64, gen = 128;
    ane::Decoder d(w, *dev, ctx);
    std::vector<std::int32_t> tokens(prompt);
    for (int i = 0; i < prompt; ++i) tokens[std::size_t(i)] = (i * 7 + 1) % w.config.vocab;
    d.feed(tokens.data(), prompt);  // warm up
    d.reset();
    auto t0 = Clock::now();
    const float* z = d.feed(tokens.data(), prompt);
    const double prompt_s = since(t0);
    t0 = Clock::now();
    for (int i = 0; i < gen; ++i) {
        const std::int32_t next = std::int32_t(std::max_element(z, z + w.config.vocab) - z);
        z = d.feed(&next, 1);
    }
    const double gen_s = since(t0);
    const double weight_bytes = double(w.config.params()) * 4.0;
    std::printf("%-13s %3d %12.0f %12.1f %10.2f\n", name, threads, prompt / prompt_s, gen / gen_s,
                weight_bytes * gen / gen_s / 1e9);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    const double bw = copy_bandwidth();
    std::printf("bench_generate: prompt 64 tokens, then 128 generated (greedy); memcpy bandwidth %.1f GB/s\n", bw);
    std::printf("%-13s %3s %12s %12s %10s\n", "model", "thr", "prompt tok/s", "gen tok/s", "weight GB/s");
    const std::string gguf = std::string(ANE_SOURCE_DIR) + "/../shared/data/stories260K-gguf/stories260K.gguf";
    std::vector<std::pair<const char*, ane::Weights>> models;
    try {
        models.emplace_back("stories260K", ane::read_gguf_model(gguf).weights);
    } catch (const std::exception& e) {
        std::printf("(stories260K skipped: %s)\n", e.what());
    }
    models.emplace_back("stories15m", ane::init_weights(ane::preset("stories15m"), 1));
    models.emplace_back("stories110m", ane::init_weights(ane::preset("stories110m"), 1));
    for (const auto& [name, w] : models)
        for (int threads : {1, 2}) run(name, w, threads);
    std::printf("device: %s\n", ane::blas_description().c_str());
    return 0;
}
