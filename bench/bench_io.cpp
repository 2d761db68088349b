// File-layer benchmarks: fp16 conversion against the CPU's own F16C instructions, and BLZT
// save/load against writing/reading the same number of bytes raw. Prints each ratio to its
// baseline, measured in the same run.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <vector>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"
#include "ane/half.hpp"

namespace {

constexpr std::size_t kHalfCount = 1 << 20;

std::vector<std::uint16_t> random_halves() {
    std::vector<std::uint16_t> h(kHalfCount);
    std::mt19937 rng(1);
    std::normal_distribution<float> d;
    for (auto& x : h) x = ane::float_to_fp16(d(rng));
    return h;
}

void BM_fp16_to_float(benchmark::State& state) {
    const auto in = random_halves();
    std::vector<float> out(kHalfCount);
    for (auto _ : state) {
        ane::fp16_to_float(in.data(), out.data(), in.size());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * kHalfCount * 2);
}
BENCHMARK(BM_fp16_to_float);

#ifdef __F16C__
void BM_fp16_to_float_f16c_baseline(benchmark::State& state) {
    const auto in = random_halves();
    std::vector<float> out(kHalfCount);
    for (auto _ : state) {
        for (std::size_t i = 0; i < kHalfCount; i += 8) {
            const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in.data() + i));
            _mm256_storeu_ps(out.data() + i, _mm256_cvtph_ps(h));
        }
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * kHalfCount * 2);
}
BENCHMARK(BM_fp16_to_float_f16c_baseline);
#endif

ane::Checkpoint bench_checkpoint() {
    ane::ModelConfig c = ane::preset("stories15m");
    ane::Checkpoint ck;
    ck.weights = ane::Weights::zeros(c);
    return ck;
}

std::string bench_path(const char* name) { return (std::filesystem::temp_directory_path() / name).string(); }

void BM_blzt_save_stories15m(benchmark::State& state) {
    const auto ck = bench_checkpoint();
    const auto path = bench_path("ane_bench.blzt");
    for (auto _ : state) ane::write_blzt(ck, path);
    state.SetBytesProcessed(state.iterations() * std::int64_t(ane::blzt_body_bytes(ck.weights.config)));
    std::filesystem::remove(path);
}
BENCHMARK(BM_blzt_save_stories15m)->Unit(benchmark::kMillisecond);

void BM_raw_write_same_bytes_baseline(benchmark::State& state) {
    const std::size_t bytes = ane::blzt_body_bytes(bench_checkpoint().weights.config);
    std::vector<char> buf(bytes);
    const auto path = bench_path("ane_bench.raw");
    for (auto _ : state) {
        ane::AtomicWriter w(path);
        w.write(buf.data(), buf.size());
        w.commit();
    }
    state.SetBytesProcessed(state.iterations() * std::int64_t(bytes));
    std::filesystem::remove(path);
}
BENCHMARK(BM_raw_write_same_bytes_baseline)->Unit(benchmark::kMillisecond);

void BM_blzt_load_weights_stories15m(benchmark::State& state) {
    const auto path = bench_path("ane_bench_load.blzt");
    ane::write_blzt(bench_checkpoint(), path);
    for (auto _ : state) benchmark::DoNotOptimize(ane::read_blzt(path).weights.embed.data());
    std::filesystem::remove(path);
}
BENCHMARK(BM_blzt_load_weights_stories15m)->Unit(benchmark::kMillisecond);

// Collects real times so that main() can print each benchmark's ratio to its baseline.
class RatioReporter : public benchmark::ConsoleReporter {
public:
    std::map<std::string, double> ns;
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const auto& r : runs) ns[r.benchmark_name()] = r.GetAdjustedRealTime();
        ConsoleReporter::ReportRuns(runs);
    }
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    auto ratio = [&](const char* name, const char* baseline) {
        if (reporter.ns.count(name) && reporter.ns.count(baseline))
            std::printf("ratio %s / %s = %.2f\n", name, baseline, reporter.ns[name] / reporter.ns[baseline]);
    };
    ratio("BM_fp16_to_float", "BM_fp16_to_float_f16c_baseline");
    ratio("BM_blzt_save_stories15m", "BM_raw_write_same_bytes_baseline");
    benchmark::Shutdown();
    return 0;
}
