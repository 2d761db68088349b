// The cpu device's matrix products on each library against a double-precision reference.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <chrono>
#include <thread>
#include <tuple>
#include <vector>

#include "ane/device/cpu_device.hpp"
#include "ane/device/device.hpp"
#include "ane/device/gemm.hpp"
#include "ane/device/matvec.hpp"
#include "ane/error.hpp"

namespace {

struct Operands {
    int M, N, K;
    bool ta, tb;
    std::vector<float> A, B, C;
    int lda() const { return ta ? M + 3 : K + 2; }  // padded leading dimensions
    int ldb() const { return tb ? K + 1 : N + 5; }
    int ldc() const { return N + 4; }
};

Operands make(int M, int N, int K, bool ta, bool tb, unsigned seed) {
    Operands o{M, N, K, ta, tb, {}, {}, {}};
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    o.A.resize(std::size_t(ta ? K : M) * o.lda());
    o.B.resize(std::size_t(tb ? N : K) * o.ldb());
    o.C.resize(std::size_t(M) * o.ldc());
    for (auto* v : {&o.A, &o.B, &o.C})
        for (float& x : *v) x = u(rng);
    return o;
}

// C = alpha op(A) op(B) + beta C in double.
std::vector<double> reference(const Operands& o, float alpha, float beta) {
    std::vector<double> out(o.C.begin(), o.C.end());
    for (int i = 0; i < o.M; ++i)
        for (int j = 0; j < o.N; ++j) {
            double s = 0;
            for (int k = 0; k < o.K; ++k) {
                const double a = o.ta ? o.A[std::size_t(k) * o.lda() + i] : o.A[std::size_t(i) * o.lda() + k];
                const double b = o.tb ? o.B[std::size_t(j) * o.ldb() + k] : o.B[std::size_t(k) * o.ldb() + j];
                s += a * b;
            }
            double& c = out[std::size_t(i) * o.ldc() + j];
            c = alpha * s + beta * c;
        }
    return out;
}

std::vector<ane::GemmLibrary> libraries() {
    std::vector<ane::GemmLibrary> libs{ane::GemmLibrary::blas, ane::GemmLibrary::automatic};
    if (ane::onednn_available()) libs.push_back(ane::GemmLibrary::onednn);
    return libs;
}

}  // namespace

TEST(Gemm, EveryLibraryAndTransposeMatchesTheDoubleReference) {
    for (const auto lib : libraries())
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            Operands o = make(37, 29, 53, ta, tb, 7 + t);
            const auto want = reference(o, 0.75f, 0.5f);
            ane::Gemm gemm(lib);
            gemm(ta, tb, o.M, o.N, o.K, 0.75f, o.A.data(), o.lda(), o.B.data(), o.ldb(), 0.5f, o.C.data(), o.ldc());
            for (int i = 0; i < o.M; ++i)
                for (int j = 0; j < o.N; ++j)
                    ASSERT_NEAR(o.C[std::size_t(i) * o.ldc() + j], want[std::size_t(i) * o.ldc() + j], 1e-4)
                        << ane::gemm_library_name(lib) << " ta=" << ta << " tb=" << tb << " at " << i << "," << j;
            // The padding beyond N in each row of C is untouched.
            Operands fresh = make(37, 29, 53, ta, tb, 7 + t);
            for (int i = 0; i < o.M; ++i)
                for (int j = o.N; j < o.ldc(); ++j)
                    ASSERT_EQ(o.C[std::size_t(i) * o.ldc() + j], fresh.C[std::size_t(i) * o.ldc() + j]);
        }
}

TEST(Gemm, AForcedLibraryGivesTheSameBitsEveryTime) {
    for (const auto lib : libraries()) {
        if (lib == ane::GemmLibrary::automatic) continue;
        Operands a = make(300, 200, 150, false, true, 3), b = a;
        ane::Gemm g1(lib), g2(lib);
        g1(false, true, a.M, a.N, a.K, 1.0f, a.A.data(), a.lda(), a.B.data(), a.ldb(), 0.0f, a.C.data(), a.ldc());
        g2(false, true, b.M, b.N, b.K, 1.0f, b.A.data(), b.lda(), b.B.data(), b.ldb(), 0.0f, b.C.data(), b.ldc());
        EXPECT_EQ(a.C, b.C) << ane::gemm_library_name(lib);
    }
}

TEST(Gemm, AutoTimesALeadingBlockOfLargeProducts) {
    const auto same = ane::gemm_trial_shape(64, 48, 32);
    EXPECT_EQ(same.M, 64);
    EXPECT_EQ(same.N, 48);
    EXPECT_EQ(same.K, 32);
    for (auto [M, N, K] : {std::tuple{1024, 32000, 288}, {32000, 288, 1024}, {1024, 288, 32000}, {4096, 4096, 4096},
                           {300, 100000, 7}}) {
        const auto t = ane::gemm_trial_shape(M, N, K);
        SCOPED_TRACE(std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
        EXPECT_LE(double(t.M) * t.N * t.K, double(1 << 27));
        EXPECT_TRUE(t.M <= M && t.N <= N && t.K <= K);
        EXPECT_GE(t.M, std::min(M, 256));
        EXPECT_GE(t.N, std::min(N, 256));
        EXPECT_GE(t.K, std::min(K, 256));
    }
    if (!ane::onednn_available()) GTEST_SKIP() << "this build has no oneDNN: auto is BLAS alone";
    // Timed on a block, each transpose reads inside its operands (ASan watches), and the product
    // is then whole.
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            ane::Gemm gemm(ane::GemmLibrary::automatic);
            Operands o = make(600, 700, 400, ta, tb, 3);
            std::vector<float> C(600 * 700);
            gemm(ta, tb, 600, 700, 400, 1.0f, o.A.data(), o.lda(), o.B.data(), o.ldb(), 0.0f, C.data(), 700);
            for (auto [i, j] : {std::pair{0, 0}, {599, 699}, {300, 350}, {599, 0}}) {
                double want = 0;
                for (int k = 0; k < 400; ++k)
                    want += double(ta ? o.A[std::size_t(k) * o.lda() + i] : o.A[std::size_t(i) * o.lda() + k]) *
                            double(tb ? o.B[std::size_t(j) * o.ldb() + k] : o.B[std::size_t(k) * o.ldb() + j]);
                EXPECT_NEAR(C[std::size_t(i) * 700 + j], want, 1e-3);
            }
        }
}

TEST(Gemm, AutoChoosesOnceForEachShapeAndSaysWhat) {
    if (!ane::onednn_available()) GTEST_SKIP() << "this build has no oneDNN: auto is BLAS alone";
    ane::Gemm gemm(ane::GemmLibrary::automatic);
    Operands o = make(64, 48, 32, false, true, 1);
    const auto first = gemm.library_for(false, true, 64, 48, 32, o.A.data(), o.lda(), o.B.data(), o.ldb());
    EXPECT_NE(first, ane::GemmLibrary::automatic);
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(gemm.library_for(false, true, 64, 48, 32, o.A.data(), o.lda(), o.B.data(), o.ldb()), first);
    Operands t = make(64, 48, 32, true, false, 2);
    gemm.library_for(true, false, 64, 48, 32, t.A.data(), t.lda(), t.B.data(), t.ldb());
    const std::string report = gemm.report();
    EXPECT_NE(report.find("matrix products: auto (oneDNN for "), std::string::npos) << report;
    EXPECT_NE(report.find("choosing took"), std::string::npos) << report;
    int shapes = 0;
    for (const std::string& lib : {std::string("oneDNN for "), std::string(ane::gemm_library_name(ane::GemmLibrary::blas)) + " for "}) {
        const auto at = report.find(lib);
        ASSERT_NE(at, std::string::npos) << report;
        shapes += std::stoi(report.substr(at + lib.size()));
    }
    EXPECT_EQ(shapes, 2) << report;
}

TEST(Gemm, UnknownOrAbsentLibrariesAreUsageErrors) {
    EXPECT_THROW(ane::parse_gemm_library("mkl"), ane::UsageError);
    EXPECT_EQ(ane::parse_gemm_library("openblas"), ane::GemmLibrary::blas);
    EXPECT_EQ(ane::parse_gemm_library("auto"), ane::GemmLibrary::automatic);
    if (ane::onednn_available())
        EXPECT_EQ(ane::parse_gemm_library("onednn"), ane::GemmLibrary::onednn);
    else
        EXPECT_THROW(ane::parse_gemm_library("onednn"), ane::UsageError);
    EXPECT_THROW(ane::device_options(1, "full", "cublas"), ane::UsageError);
}

TEST(Gemm, TheCpuDeviceNamesItsLibraryInTheReport) {
    ane::DeviceOptions o;
    o.threads = 1;
    o.gemm = ane::GemmLibrary::blas;
    auto device = ane::make_device("cpu", o);
    const std::string blas = ane::gemm_library_name(ane::GemmLibrary::blas);
    EXPECT_NE(device->describe().find("matrix products " + blas), std::string::npos) << device->describe();
    EXPECT_EQ(device->kernel_report(), "matrix products: " + blas + "\n");
}

namespace {

// Round to the nearest bf16, ties to even (finite inputs).
float to_bf16(float x) {
    std::uint32_t u;
    std::memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    std::memcpy(&x, &u, 4);
    return x;
}

bool bf16_here() { return ane::bf16_missing().empty(); }

}  // namespace

TEST(Gemm, Bf16ProductsAreTheReferenceOnBf16RoundedOperands) {
    if (!bf16_here()) GTEST_SKIP() << "no bf16 products on this CPU or build";
    for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        Operands o = make(37, 29, 300, ta, tb, 11 + t);
        Operands rounded = o;
        for (float& x : rounded.A) x = to_bf16(x);
        for (float& x : rounded.B) x = to_bf16(x);
        const auto want = reference(rounded, 0.75f, 0.5f);
        const auto fp32 = reference(o, 0.75f, 0.5f);
        ane::Bf16Gemm gemm;
        gemm(ta, tb, o.M, o.N, o.K, 0.75f, o.A.data(), o.lda(), o.B.data(), o.ldb(), 0.5f, o.C.data(), o.ldc());
        double off_fp32 = 0;
        for (int i = 0; i < o.M; ++i)
            for (int j = 0; j < o.N; ++j) {
                const std::size_t at = std::size_t(i) * o.ldc() + j;
                ASSERT_NEAR(o.C[at], want[at], 2e-4) << "ta=" << ta << " tb=" << tb << " at " << i << "," << j;
                off_fp32 = std::max(off_fp32, std::fabs(o.C[at] - fp32[at]));
            }
        EXPECT_GT(off_fp32, 1e-3) << "the operands were not rounded to bf16";
    }
}

TEST(Gemm, PrecisionIsParsedAndBf16RefusesOpenBlas) {
    EXPECT_EQ(ane::parse_precision("fp32"), ane::Precision::fp32);
    EXPECT_THROW(ane::parse_precision("fp16"), ane::UsageError);
    EXPECT_THROW(ane::device_options(1, "full", "openblas", "bf16"), ane::UsageError);
}

TEST(Matvec, EveryKernelTheCpuHasMatchesTheDoubleReference) {
    std::vector<ane::MatvecIsa> isas{ane::MatvecIsa::portable};
    if (ane::best_matvec_isa() != ane::MatvecIsa::portable) isas.push_back(ane::MatvecIsa::avx2);
    if (ane::best_matvec_isa() == ane::MatvecIsa::avx512) isas.push_back(ane::MatvecIsa::avx512);
    for (const auto isa : isas)
        for (int K : {1, 7, 16, 33, 288, 301})
            for (float beta : {0.0f, 0.5f}) {
                const int N = 37;
                Operands o = make(1, N, K, false, true, unsigned(K));  // A: x [1, K] (+pad), B: W [N, K] (+pad)
                std::vector<float> W(std::size_t(N) * K), y(o.C.begin(), o.C.begin() + N);
                for (int n = 0; n < N; ++n)
                    for (int k = 0; k < K; ++k) W[std::size_t(n) * K + k] = o.B[std::size_t(n) * o.ldb() + k];
                if (beta == 0.0f) std::fill(y.begin(), y.end(), NAN);  // beta 0 never reads y
                std::vector<float> y0(o.C.begin(), o.C.begin() + N);
                ane::matvec_rows(isa, W.data(), o.A.data(), K, 0, N, y.data(), 0.75f, beta);
                for (int n = 0; n < N; ++n) {
                    double dot = 0;
                    for (int k = 0; k < K; ++k) dot += double(W[std::size_t(n) * K + k]) * o.A[k];
                    const double want = 0.75 * dot + (beta == 0.0f ? 0.0 : beta * double(y0[n]));
                    ASSERT_NEAR(y[n], want, 1e-4) << ane::matvec_isa_name(isa) << " K " << K << " row " << n;
                }
            }
}

// A worker that stalls in the middle of shared work twice in a row (as on a busy core) makes
// the caller run the next work alone for a while; the work is done either way.
TEST(Matvec, APoolWhoseWorkerStallsRunsTheCallerAlone) {
    ane::SpinPool pool(2, 20);
    const auto caller = std::this_thread::get_id();
    std::atomic<int> items{0}, by_worker{0};
    auto share = [&](bool stall) {
        std::atomic<int> next{0};
        pool.share([&] {
            for (int i = next.fetch_add(1); i < 64; i = next.fetch_add(1)) {
                ++items;
                if (std::this_thread::get_id() != caller) {
                    ++by_worker;
                    if (stall) std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
                // Items of ~20 us, so that a spinning worker joins before the caller is done.
                const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
                while (std::chrono::steady_clock::now() < until) {
                }
            }
        });
    };
    // Until the worker took an item twice (one stall alone is taken for a hiccup).
    for (int tries = 0; tries < 100 && pool.stalls() == 0; ++tries) share(true);
    ASSERT_EQ(pool.stalls(), 1);
    by_worker = 0;
    items = 0;
    for (int i = 0; i < 20; ++i) share(false);
    EXPECT_EQ(items.load(), 20 * 64);
    EXPECT_EQ(by_worker.load(), 0);  // within alone_ms of the stall: the caller alone
    std::this_thread::sleep_for(std::chrono::milliseconds(int(ane::SpinPool::alone_ms) + 20));
    for (int i = 0; i < 200 && by_worker.load() == 0; ++i) share(false);
    EXPECT_GT(by_worker.load(), 0);  // then the pool again
}

// Short jobs while every core is taken (more threads burning than cores) end before the
// sleeping worker gets a core to join them: after a window of such jobs the caller runs alone.
// Jobs long enough for it to join keep the pool.
TEST(Matvec, APoolWhoseWorkerMissesItsJobsRunsTheCallerAlone) {
    const auto caller = std::this_thread::get_id();
    // Jobs of `items` items of item_us each, until the pool runs the caller alone; whether a
    // worker took an item.
    auto run = [&](ane::SpinPool& pool, int jobs, int items, int item_us) {
        std::atomic<bool> worker{false};
        for (int j = 0; j < jobs && pool.stalls() == 0; ++j) {
            std::atomic<int> next{0};
            pool.share([&] {
                for (int i = next.fetch_add(1); i < items; i = next.fetch_add(1)) {
                    if (std::this_thread::get_id() != caller) worker = true;
                    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(item_us);
                    while (std::chrono::steady_clock::now() < until) {
                    }
                }
            });
        }
        return worker.load();
    };
    ane::SpinPool slow(2, 0);
    run(slow, 40, 40, 250);  // 10 ms jobs
    EXPECT_EQ(slow.missed_windows(), 0);

    ane::SpinPool quick(2, 0);
    bool started = false;  // the worker has joined a job (a starting thread misses some)
    for (int tries = 0; tries < 20 && !started && quick.stalls() == 0; ++tries) started = run(quick, 1, 40, 250);
    if (!started || quick.stalls() > 0) GTEST_SKIP() << "the machine is too busy for the pool's worker to join";
    std::atomic<bool> stop{false};
    std::vector<std::thread> burners;
    for (unsigned i = 0; i < std::max(2u, std::thread::hardware_concurrency()) + 1; ++i)
        burners.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
            }
        });
    // Until the rule fires (the other one, two stalls, may come first: then alone_ms later).
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::atomic<int> items{0};
    while (quick.missed_windows() == 0 && std::chrono::steady_clock::now() < until) {
        std::atomic<int> next{0};
        quick.share([&] {
            for (int i = next.fetch_add(1); i < 2; i = next.fetch_add(1)) ++items;
        });
    }
    stop = true;
    for (auto& t : burners) t.join();
    EXPECT_EQ(quick.missed_windows(), 1);
}

TEST(Matvec, ThePoolSplitsRowsAndEveryThreadRunsEachJob) {
    for (int threads : {1, 2, 3}) {
        ane::SpinPool pool(threads, 20);
        std::vector<int> ran(static_cast<std::size_t>(threads), 0);
        for (int job = 0; job < 200; ++job) {
            pool.run([&](int i, int n) {
                ASSERT_EQ(n, threads);
                ++ran[static_cast<std::size_t>(i)];
            });
            if (job == 100) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // workers fall asleep
        }
        for (int r : ran) EXPECT_EQ(r, 200);
        const int N = 301, K = 129;
        std::vector<float> W(std::size_t(N) * K), x(K), y(N), want(N);
        for (std::size_t i = 0; i < W.size(); ++i) W[i] = float(i % 17) * 0.25f - 2.0f;
        for (int k = 0; k < K; ++k) x[k] = float(k % 5) - 2.0f;
        ane::matvec(pool, W.data(), x.data(), N, K, y.data(), 1.0f, 0.0f);
        ane::matvec_rows(ane::MatvecIsa::portable, W.data(), x.data(), K, 0, N, want.data(), 1.0f, 0.0f);
        for (int n = 0; n < N; ++n) ASSERT_NEAR(y[n], want[n], 1e-3) << threads << " threads, row " << n;
    }
}

// run() jobs right after share() jobs too small for the worker to join in time (a prompt's
// products after a decoded token's): each run() job still runs exactly once on every thread.
// A worker that woke late for a share() job once read the next run() job's fields under the
// old generation, ran it twice and left the caller waiting for ever; that took over 300,000
// such pairs to show, so this is a guard that catches it only sometimes.
TEST(Matvec, RunJobsAfterLateSharedJobsRunOncePerThread) {
    ane::SpinPool pool(2, 50);
    int wrong = 0;
    for (int i = 0; i < 400000; ++i) {
        std::atomic<int> items{0};
        pool.share([&] { items.fetch_add(1); });
        int ran[2] = {0, 0};
        pool.run([&](int index, int) { ++ran[index]; });
        wrong += ran[0] != 1 || ran[1] != 1;
    }
    EXPECT_EQ(wrong, 0);
}

// A prompt's forward products (up to 512 rows of X) run as slices of W's rows on the pool's
// threads, single-threaded oneDNN products each: the double reference on every library and
// thread count, at the boundary (512) and past it (the library's own threading), with slices
// of 16 rows that do not divide N; the caller's OpenMP team size is as it was.
TEST(Gemm, APromptsProductInSlicesOnThePoolMatchesTheDoubleReference) {
    for (const char* gemm : {"openblas", "auto", "onednn"}) {
        if (std::string(gemm) == "onednn" && !ane::onednn_available()) continue;
        for (const int threads : {1, 2}) {
            auto device = ane::make_device("cpu", ane::device_options(threads, "full", gemm));
            for (const int M : {2, 64, 512, 513}) {
                const int N = 301, K = 129;
                Operands o = make(M, N, K, false, true, unsigned(M + threads));
                std::vector<float> X(std::size_t(M) * K), W(std::size_t(N) * K), Y(std::size_t(M) * N);
                for (int i = 0; i < M; ++i) {
                    std::memcpy(&X[std::size_t(i) * K], &o.A[std::size_t(i) * o.lda()], sizeof(float) * std::size_t(K));
                    for (int j = 0; j < N; ++j) Y[std::size_t(i) * N + j] = o.C[std::size_t(i) * o.ldc() + j];
                }
                for (int j = 0; j < N; ++j)
                    std::memcpy(&W[std::size_t(j) * K], &o.B[std::size_t(j) * o.ldb()], sizeof(float) * std::size_t(K));
                const auto want = reference(o, 0.75f, 0.5f);
                const int team = omp_get_max_threads();
                device->matmul_forward(X.data(), W.data(), M, N, K, Y.data(), 0.75f, 0.5f);
                EXPECT_EQ(omp_get_max_threads(), team);
                for (int i = 0; i < M; ++i)
                    for (int j = 0; j < N; ++j)
                        ASSERT_NEAR(Y[std::size_t(i) * N + j], want[std::size_t(i) * o.ldc() + j], 1e-4)
                            << gemm << ", " << threads << " threads, M " << M << " at " << i << "," << j;
            }
        }
    }
}

// A made weight (Device::made_matmul_forward, MeZO's θ + c·z): each row made exactly once, and
// the product as the double reference, on every library (OpenBLAS: made whole; oneDNN: in
// panels of rows made and multiplied on all threads), for a matrix of one and of several panels.
TEST(Gemm, AMadeWeightHasEachRowMadeOnceAndMatchesTheDoubleReference) {
    EXPECT_EQ(ane::made_panel_rows(32000, 768, 2), 256);  // 768 KB panels for the classifier
    EXPECT_EQ(ane::made_panel_rows(2048, 768, 2), 80);    // 256 KB for a layer's products
    EXPECT_EQ(ane::made_panel_rows(768, 2048, 2), 32);
    EXPECT_EQ(ane::made_panel_rows(10, 5, 2), 10);
    for (const char* gemm : {"openblas", "auto", "onednn"}) {
        if (std::string(gemm) == "onednn" && !ane::onednn_available()) continue;
        auto device = ane::make_device("cpu", ane::device_options(2, "full", gemm));
        for (const auto& shape : {std::tuple{7, 1500, 96}, std::tuple{5, 37, 53}}) {
            // Not structured bindings: clang 14's lambdas cannot capture them.
            const int M = std::get<0>(shape), N = std::get<1>(shape), K = std::get<2>(shape);
            Operands o = make(M, N, K, false, true, unsigned(N));
            std::vector<std::atomic<int>> made(static_cast<std::size_t>(N));
            const ane::WeightRows rows = [&](std::int64_t r0, std::int64_t r1, float* out) {
                for (std::int64_t r = r0; r < r1; ++r) {
                    made[std::size_t(r)].fetch_add(1);
                    std::memcpy(out + (r - r0) * K, o.B.data() + r * o.ldb(), sizeof(float) * std::size_t(K));
                }
            };
            std::vector<float> X(std::size_t(M) * K), Y(std::size_t(M) * N);  // dense, as the device takes them
            for (int i = 0; i < M; ++i) {
                std::memcpy(&X[std::size_t(i) * K], &o.A[std::size_t(i) * o.lda()], sizeof(float) * std::size_t(K));
                for (int j = 0; j < N; ++j) Y[std::size_t(i) * N + j] = o.C[std::size_t(i) * o.ldc() + j];
            }
            const auto want = reference(o, 0.75f, 0.5f);
            device->made_matmul_forward(X.data(), rows, M, N, K, Y.data(), 0.75f, 0.5f);
            for (int r = 0; r < N; ++r) ASSERT_EQ(made[std::size_t(r)].load(), 1) << gemm << " row " << r;
            for (int i = 0; i < M; ++i)
                for (int j = 0; j < N; ++j)
                    ASSERT_NEAR(Y[std::size_t(i) * N + j], want[std::size_t(i) * o.ldc() + j], 1e-4)
                        << gemm << " " << M << "x" << N << "x" << K << " at " << i << "," << j;
        }
    }
}
