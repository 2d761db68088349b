// Evaluation throughput for the autoresearch preset (full 49,152-id softmax, seq 128, batches
// of 8 windows) at stride = seq and stride 64, with the ratio to the sgemm ceiling: the time
// OpenBLAS alone needs for the same forward products, replayed in the same run.
#include <chrono>
#include <cstdio>
#include <random>

#include "ane/eval.hpp"
#include "ane/model/init.hpp"
#include "ane/runtime.hpp"
#include "cpu_info.hpp"
#include "recording_device.hpp"

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    using Clock = std::chrono::steady_clock;
    const ane::ModelConfig c = ane::preset("autoresearch");
    const ane::Weights w = ane::init_weights(c, 1);
    std::mt19937 rng(2);
    std::vector<std::uint16_t> tokens(16385);
    for (auto& t : tokens) t = std::uint16_t(rng() % std::uint32_t(c.vocab));
    std::printf("bench_eval: %s\n", cpu_model().c_str());
    std::printf("bench_eval: autoresearch, %zu tokens, full vocabulary %d, seq %d, batch 8\n", tokens.size(), c.vocab,
                c.seq);
    std::printf("%4s %6s %12s %10s %12s %9s\n", "thr", "stride", "eval tok/s", "eval s", "sgemm s", "ceiling");
    for (int threads : {1, 2})
        for (int stride : {c.seq, 64}) {
            auto dev = std::make_unique<RecordingDevice>(ane::make_device("cpu", threads));
            ane::Transformer model(w, *dev, 8, ane::VocabMap::identity(c.vocab));
            const auto windows = ane::plan_eval_windows(tokens.size(), c.seq, stride);
            const auto t0 = Clock::now();
            const ane::EvalResult r = ane::evaluate_stream(model, tokens, windows, nullptr);
            const double eval_s = std::chrono::duration<double>(Clock::now() - t0).count();
            std::vector<float> A, B, C;
            ane::Gemm best(ane::GemmLibrary::automatic);
            replay_gemms(dev->shapes, A, B, C, best);
            const auto t1 = Clock::now();
            replay_gemms(dev->shapes, A, B, C, best);
            const double gemm_s = std::chrono::duration<double>(Clock::now() - t1).count();
            std::printf("%4d %6d %12.0f %10.2f %12.2f %9.2f\n", threads, stride, r.tokens / eval_s, eval_s, gemm_s,
                        gemm_s / eval_s);
            std::fflush(stdout);
        }
    std::printf("device: %s\n", ane::make_device("cpu", 1)->describe().c_str());
    return 0;
}
