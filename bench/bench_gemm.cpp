// The matrix products of a training step, per library, at 1 and 2 threads: GFLOP/s of
// OpenBLAS (whatever OPENBLAS_CORETYPE gives), oneDNN, and bf16 products (oneDNN's and, with
// AVX512_BF16, our kernel's, also on a weight kept packed, as training keeps it for the
// forward and input-gradient products) for each shape of the autoresearch and stories15m
// cases (1024 tokens), the ratio oneDNN / OpenBLAS, and
// whether one product against stacked weights (Q/K/V as one, W1/W3 as one) beats the
// separate products on the faster library: the measurements behind `--gemm auto` and
// behind keeping the projections separate.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ane/device/bf16_gemm_avx512.hpp"
#include "ane/device/device.hpp"
#include "ane/device/gemm.hpp"
#include "ane/error.hpp"
#include "cpu_info.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Shape {
    const char* what;
    bool ta, tb;
    int m, n, k;
};

// Best of `reps` timed calls after one warm-up, in seconds.
template <typename F>
double best_time(F&& call, int reps = 5) {
    call();
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        call();
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
}

double time_shape(const Shape& s, ane::GemmLibrary library) {
    std::vector<float> A(std::size_t(s.m) * s.k, 0.01f), B(std::size_t(s.k) * s.n, 0.02f), C(std::size_t(s.m) * s.n);
    const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    ane::Gemm gemm(library);
    return best_time([&] { gemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.n); });
}

// bf16 products on oneDNN or our kernel; `packed`: B a weight, packed by the warm-up call.
double time_bf16(const Shape& s, ane::Bf16Gemm::Kernel kernel, bool packed = false) {
    std::vector<float> A(std::size_t(s.m) * s.k, 0.01f), B(std::size_t(s.k) * s.n, 0.02f), C(std::size_t(s.m) * s.n);
    const int lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
    ane::Bf16Gemm gemm(kernel);
    if (packed)
        return best_time([&] {
            gemm.weight_product(s.tb, s.m, s.n, s.k, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.n);
        });
    return best_time([&] { gemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), s.n); });
}

}  // namespace

int main() {
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    std::printf("bench_gemm: %s; OPENBLAS_CORETYPE=%s\n", cpu_model().c_str(), coretype ? coretype : "(unset)");
    std::printf("device: %s\n", ane::make_device("cpu", 1)->describe().c_str());
    const std::string no_bf16 = ane::bf16_missing();
    const bool bf16 = no_bf16.empty();
    if (!bf16) std::printf("no bf16 column: %s\n", no_bf16.c_str());
    const bool own = bf16 && ane::bf16::available();
    if (bf16 && !own) std::printf("no column of our bf16 kernel: this CPU has no AVX512_BF16\n");
    const int T = 1024;
    const std::vector<Shape> shapes = {
        {"autoresearch Wq fwd", false, true, T, 512, 512},   {"autoresearch Wk fwd", false, true, T, 128, 512},
        {"autoresearch W1 fwd", false, true, T, 1408, 512},  {"autoresearch W2 dX", false, false, T, 1408, 512},
        {"autoresearch W1 dW", true, false, 1408, 512, T},   {"autoresearch cls fwd", false, true, T, 16893, 512},
        {"stories15m Wq fwd", false, true, T, 288, 288},     {"stories15m W1 fwd", false, true, T, 768, 288},
        {"stories15m W1 dX", false, false, T, 288, 768},     {"stories15m W1 dW", true, false, 768, 288, T},
        {"stories15m cls fwd", false, true, T, 32000, 288},  {"stories15m cls dW", true, false, 32000, 288, T},
    };
    for (int threads : {1, 2}) {
        ane::set_compute_threads(threads);
        std::printf("\n%d thread(s)                GFLOP/s:  OpenBLAS   oneDNN  ratio%s%s\n", threads,
                    bf16 ? "  bf16 oneDNN" : "", own ? "  bf16 ours  packed W  ours vs oneDNN bf16, vs fp32" : "");
        for (const Shape& s : shapes) {
            const double flops = 2.0 * s.m * s.n * s.k;
            const double blas = time_shape(s, ane::GemmLibrary::blas);
            if (!ane::onednn_available()) {
                std::printf("%-22s %5dx%5dx%5d %8.1f\n", s.what, s.m, s.n, s.k, flops / blas / 1e9);
                continue;
            }
            const double dnn = time_shape(s, ane::GemmLibrary::onednn);
            std::printf("%-22s %5dx%5dx%5d %8.1f %8.1f %6.2f", s.what, s.m, s.n, s.k, flops / blas / 1e9,
                        flops / dnn / 1e9, blas / dnn);
            if (bf16) {
                const double b = time_bf16(s, ane::Bf16Gemm::Kernel::onednn);
                std::printf(" %12.1f", flops / b / 1e9);
                if (own) {
                    const double o = time_bf16(s, ane::Bf16Gemm::Kernel::best);
                    // A weight is B, not transposed A: the forward's and input gradient's products.
                    const double p = s.ta ? o : time_bf16(s, ane::Bf16Gemm::Kernel::best, true);
                    std::printf(" %10.1f %9.1f %10.2f %8.2f", flops / o / 1e9, flops / p / 1e9, b / p,
                                std::min(blas, dnn) / p);
                }
            }
            std::printf("\n");
        }
        // Separate projections against one product on stacked weights, forward (N stacked)
        // and input gradient (K stacked), on the faster library per shape (auto).
        struct Fusion {
            const char* what;
            int parts, n, k;
        };
        for (const Fusion f : {Fusion{"stories15m Q/K/V", 3, 288, 288}, Fusion{"stories15m W1/W3", 2, 768, 288},
                               Fusion{"autoresearch Q/K/V", 1, 768, 512}, Fusion{"autoresearch W1/W3", 2, 1408, 512}}) {
            // autoresearch's Q/K/V: 512 + 128 + 128 rows stacked, against the three products.
            const bool ar_qkv = f.parts == 1;
            double separate_fwd = 0, separate_dx = 0;
            const std::vector<int> rows = ar_qkv ? std::vector<int>{512, 128, 128} : std::vector<int>(f.parts, f.n);
            for (int n : rows) {
                separate_fwd += time_shape({"", false, true, T, n, f.k}, ane::GemmLibrary::automatic);
                separate_dx += time_shape({"", false, false, T, f.k, n}, ane::GemmLibrary::automatic);
            }
            int stacked = 0;
            for (int n : rows) stacked += n;
            const double fused_fwd = time_shape({"", false, true, T, stacked, f.k}, ane::GemmLibrary::automatic);
            const double fused_dx = time_shape({"", false, false, T, f.k, stacked}, ane::GemmLibrary::automatic);
            std::printf("%-22s stacked / separate: forward %.2f, input gradient %.2f (above 1: stacking is slower)\n",
                        f.what, fused_fwd / separate_fwd, fused_dx / separate_dx);
        }
    }
    return 0;
}
