#include "ane/device/gemm.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "ane/cblas.hpp"
#include "ane/error.hpp"
#include "ane/log.hpp"

#if defined(ANE_HAVE_ONEDNN)
#include <oneapi/dnnl/dnnl.h>
#endif

namespace ane {

// Each library runs at its steady rate well before the trial's size, and a leading block of
// op(A) and op(B) is read through the same pointers and leading dimensions, whatever the
// transposes. A whole classifier product timed on an OpenBLAS that fell back to its SSE
// kernels took seconds per run (stories15M: 4.8 s of choosing at start-up, now 0.2 s).
GemmTrial gemm_trial_shape(int M, int N, int K) {
    constexpr double kTrialMacs = double(1 << 27);
    constexpr int kTrialMin = 256;
    GemmTrial t{M, N, K};
    while (double(t.M) * t.N * t.K > kTrialMacs) {
        int* largest = t.M >= t.N && t.M >= t.K ? &t.M : t.N >= t.K ? &t.N : &t.K;
        if (*largest < 2 * kTrialMin) break;
        *largest /= 2;
    }
    return t;
}

namespace {

const char* blas_name() {
#if defined(ANE_BLAS_ACCELERATE)
    return "Accelerate";
#else
    return "OpenBLAS";
#endif
}

#if defined(ANE_HAVE_ONEDNN)
const char* isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
        case dnnl_cpu_isa_sse41: return "sse41";
        case dnnl_cpu_isa_avx: return "avx";
        case dnnl_cpu_isa_avx2: return "avx2";
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
        case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
        case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
        case dnnl_cpu_isa_avx512_core: return "avx512_core";
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
        default: return "no JIT ISA";
    }
}
#endif

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GemmLibrary parse_gemm_library(const std::string& text) {
    if (text == "openblas" || text == "blas" || text == "accelerate") return GemmLibrary::blas;
    if (text == "auto") return GemmLibrary::automatic;
    if (text == "onednn") {
        if (!onednn_available()) throw usage_error("--gemm onednn: this build has no oneDNN (", onednn_description(), ")");
        return GemmLibrary::onednn;
    }
    throw usage_error("--gemm ", text, ": unknown library (openblas, onednn or auto)");
}

const char* gemm_library_name(GemmLibrary library) {
    switch (library) {
        case GemmLibrary::blas: return blas_name();
        case GemmLibrary::onednn: return "oneDNN";
        case GemmLibrary::automatic: return "auto";
    }
    return "?";
}

bool onednn_available() {
#if defined(ANE_HAVE_ONEDNN)
    return true;
#else
    return false;
#endif
}

std::string onednn_description() {
#if defined(ANE_HAVE_ONEDNN)
    const dnnl_version_t* v = dnnl_version();
    return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) +
           ", " + isa_name(dnnl_get_effective_cpu_isa()) + " JIT";
#else
    return "built without oneDNN";
#endif
}

void gemm_on(GemmLibrary library, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
             int lda, const float* B, int ldb, float beta, float* C, int ldc) {
#if defined(ANE_HAVE_ONEDNN)
    if (library == GemmLibrary::onednn) {
        const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B,
                                                ldb, beta, C, ldc);
        if (status != dnnl_success)
            throw Error("oneDNN sgemm failed (status " + std::to_string(int(status)) + ") on " + std::to_string(M) +
                        "x" + std::to_string(N) + "x" + std::to_string(K));
        return;
    }
#endif
    (void)library;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

Gemm::Gemm(GemmLibrary requested, Precision precision) : requested_(requested), precision_(precision) {
    if (requested_ == GemmLibrary::automatic && !onednn_available()) requested_ = GemmLibrary::blas;
    // bf16 under --gemm onednn: oneDNN's kernel even where ours would run.
    if (precision_ == Precision::bf16)
        bf16_ = std::make_unique<Bf16Gemm>(requested_ == GemmLibrary::onednn ? Bf16Gemm::Kernel::onednn
                                                                            : Bf16Gemm::Kernel::best);
}

GemmLibrary Gemm::library_for(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                              const float* B, int ldb) {
    if (requested_ != GemmLibrary::automatic) return requested_;
    const Key key{trans_a, trans_b, M, N, K};
    if (auto it = chosen_.find(key); it != chosen_.end()) return it->second.library;

    // Both libraries on this call's operands into scratch: one warm-up each (first-touch page
    // faults, JIT code generation), then the best of up to three timed runs, stopping early
    // when one library is clearly ahead.
    const auto t_start = std::chrono::steady_clock::now();
    const GemmTrial trial = gemm_trial_shape(M, N, K);
    // Scratch for the timed outputs, freed after.
    std::vector<float> scratch(std::size_t(trial.M) * std::size_t(trial.N));
    // No B (a weight made as the product goes): zeros in its place, the trial's leading block.
    std::vector<float> zeros;
    if (!B) {
        zeros.assign(std::size_t(trans_b ? trial.N : trial.K) * std::size_t(ldb), 0.0f);
        B = zeros.data();
    }
    auto run = [&](GemmLibrary lib) {
        const auto t0 = std::chrono::steady_clock::now();
        gemm_on(lib, trans_a, trans_b, trial.M, trial.N, trial.K, 1.0f, A, lda, B, ldb, 0.0f, scratch.data(),
                trial.N);
        return seconds_since(t0);
    };
    run(GemmLibrary::blas);
    run(GemmLibrary::onednn);
    Choice c{GemmLibrary::blas, 1e30, 1e30};
    for (int round = 0; round < 3; ++round) {
        c.blas_s = std::min(c.blas_s, run(GemmLibrary::blas));
        c.onednn_s = std::min(c.onednn_s, run(GemmLibrary::onednn));
        const double ratio = c.blas_s / c.onednn_s;
        if (ratio > 1.25 || ratio < 0.8) break;
    }
    c.library = c.onednn_s < c.blas_s ? GemmLibrary::onednn : GemmLibrary::blas;
    choosing_s_ += seconds_since(t_start);
    char line[200];
    std::snprintf(line, sizeof line, "gemm %c%c %dx%dx%d (timed on %dx%dx%d): %s %.3f ms, oneDNN %.3f ms -> %s",
                  trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, trial.M, trial.N, trial.K, blas_name(),
                  c.blas_s * 1e3, c.onednn_s * 1e3, gemm_library_name(c.library));
    log::debug(line);
    chosen_.emplace(key, c);
    return c.library;
}

void Gemm::operator()(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                      const float* B, int ldb, float beta, float* C, int ldc) {
    if (bf16_) return (*bf16_)(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    const GemmLibrary lib = library_for(trans_a, trans_b, M, N, K, A, lda, B, ldb);
    gemm_on(lib, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void Gemm::weight_product(bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                          int ldb, float beta, float* C, int ldc) {
    if (bf16_) return bf16_->weight_product(trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    (*this)(false, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

std::string Gemm::report() const {
    if (bf16_)
        return std::string("matrix products: bf16 operands, fp32 accumulation, on ") + bf16_->kernel_name() +
               (bf16_->shapes() ? " (" + std::to_string(bf16_->shapes()) + " shape(s))" : std::string()) +
               "; attention in fp32";
    std::string text = std::string("matrix products: ") + gemm_library_name(requested_);
    if (requested_ != GemmLibrary::automatic) return text;
    int onednn = 0, blas = 0;
    for (const auto& [key, c] : chosen_) (c.library == GemmLibrary::onednn ? onednn : blas) += 1;
    return text + " (oneDNN for " + std::to_string(onednn) + " shape(s), " + blas_name() + " for " +
           std::to_string(blas) + "; choosing took " + std::to_string(int(choosing_s_ * 1e3 + 0.5)) + " ms)";
}

}  // namespace ane
