// The cpu backend: float32 products on OpenBLAS (Accelerate on Apple), attention and
// elementwise kernels on OpenMP.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>

#include <thread>

#include "ane/cblas.hpp"
#include "ane/device/cpu_device.hpp"
#include "ane/device/matvec.hpp"
#include "ane/device/quant_matvec.hpp"
#include "ane/error.hpp"
#include "ane/model/kernels.hpp"

#if !defined(ANE_BLAS_ACCELERATE)
extern "C" {
// Declared by OpenBLAS's cblas.h in most builds; repeated here for the ones that do not.
char* openblas_get_corename(void);
char* openblas_get_config(void);
int openblas_get_parallel(void);
void openblas_set_num_threads(int);
}
#endif

namespace ane {

int set_compute_threads(int threads) {
    if (threads <= 0) threads = int(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
    omp_set_num_threads(threads);
#if defined(ANE_BLAS_ACCELERATE)
    // Accelerate sizes its own pool; VECLIB_MAXIMUM_THREADS (read when it starts) bounds it.
#else
    openblas_set_num_threads(threads);
#endif
    return threads;
}

std::string blas_description() {
#if defined(ANE_BLAS_ACCELERATE)
    const char* limit = std::getenv("VECLIB_MAXIMUM_THREADS");
    return std::string("Accelerate (vecLib), threads ") + (limit ? limit : "its own");
#else
    const int parallel = openblas_get_parallel();
    const char* mode = parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : "sequential";
    std::string text = std::string(openblas_get_config()) + ", kernels " + openblas_get_corename() + ", " + mode;
#if defined(__x86_64__)
    // A CPU newer than the OpenBLAS release gets its SSE-era fallback kernels (seen: 0.3.21 on
    // family 6 model 207 chose Prescott, 3x slower than SkylakeX). Said where it shows.
    const std::string core = openblas_get_corename();
    const bool sse_only = core == "Prescott" || core == "Core2" || core == "Penryn" || core == "Dunnington" ||
                          core == "Nehalem" || core == "Atom";
    if (sse_only && __builtin_cpu_supports("avx2"))
        text += std::string(" (OpenBLAS did not recognise this CPU; OPENBLAS_CORETYPE=") +
                (__builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell") + " would use its vector kernels)";
#endif
    return text;
#endif
}

CpuDevice::CpuDevice(int threads, GemmLibrary gemm, Precision precision)
    : gemm_(gemm, precision), threads_(set_compute_threads(threads)) {}

std::string CpuDevice::name() const { return "cpu"; }
std::string CpuDevice::describe() const {
    std::string text = "cpu: " + blas_description();
    if (onednn_available()) text += "; " + onednn_description();
    if (gemm_.precision() == Precision::bf16)
        text += std::string("; matrix products bf16 (") + gemm_.bf16_kernel_name() + ")";
    else
        text += std::string("; matrix products ") + gemm_library_name(gemm_.requested());
    text += ", " + std::to_string(threads_) + " thread(s)";
    if (const char* cap = std::getenv("ANE_MAX_CPU_ISA"))
        text += std::string("; own kernels within ANE_MAX_CPU_ISA=") + cap;
    return text;
}

std::string CpuDevice::kernel_report() const {
    std::string text = gemm_.report() + "\n";
    if (pool_)
        text += std::string("matrix-vector products: own ") + matvec_isa_name(best_matvec_isa()) + " kernel (int8: " +
                int8_dot_name(best_int8_dot()) + ") on " + std::to_string(pool_->threads()) +
                " thread(s), waiting by a bounded spin; " + std::to_string(pool_->stalls()) +
                " time(s) a busy core was seen (a worker stalled twice within " +
                std::to_string(int(SpinPool::repeat_ms)) + " ms), each followed by " +
                std::to_string(int(SpinPool::alone_ms)) + " ms on one thread\n";
    return text;
}

void CpuDevice::matmul_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha, float beta) {
    ScopedTimer t(profile_.matmul_s);
    profile_.matmul_flops += 2.0 * M * N * K;
    if (M == 1) {  // one token (decoding): a matrix-vector product, bound by reading W
        if (gemm_.requested() == GemmLibrary::blas) {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, alpha, W, K, X, 1, beta, Y, 1);
            return;
        }
        matvec(pool(), W, X, N, K, Y, alpha, beta);
        return;
    }
    if (M <= kPoolRows && threads_ > 1 && gemm_.precision() == Precision::fp32 &&
        gemm_.requested() != GemmLibrary::blas)  // the slices run on oneDNN (auto or forced)
        return pool_matmul_forward(X, W, M, N, K, Y, alpha, beta);
    gemm_(false, true, M, N, K, alpha, X, K, W, K, beta, Y, N);
}

// A prompt's products are small (64 x 288 x 288 takes 55 us on one Zen 5 core): oneDNN's own
// threads, an OpenMP team that waits passively, cost ~20 us to wake for each one, and it split
// them no better than 1.1x. Here each of the pool's threads takes its slice of W's rows, a
// single-threaded oneDNN product (its thread's OpenMP team size set to one meanwhile). Every
// thread runs its slice, as an OpenMP team would: the pool's share(), which lets the caller go
// on without a late worker, went alone for 200 ms at a time here on workers delayed mid-product.
void CpuDevice::pool_matmul_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha,
                                    float beta) {
    const int units = (N + 15) / 16;
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    pool().run([&](int index, int threads) {
        const int r0 = std::min(N, 16 * int(std::int64_t(units) * index / threads));
        const int r1 = std::min(N, 16 * int(std::int64_t(units) * (index + 1) / threads));
        if (r1 <= r0) return;
        const int team = omp_get_max_threads();
        if (team != 1) omp_set_num_threads(1);
        try {
            gemm_on(gemm_.inner_library(), false, true, M, r1 - r0, K, alpha, X, K, W + std::size_t(r0) * K, K, beta,
                    Y + r0, N);
        } catch (...) {
            if (!failed.exchange(true)) error = std::current_exception();
        }
        if (team != 1) omp_set_num_threads(team);
    });
    if (error) std::rethrow_exception(error);
}

// Rows per panel of a made product: L2-sized (256-768 KB of floats), and small enough for
// 16 panels a thread where the matrix allows, in multiples of 16. Measured on Zen 5 at
// stories110M's shapes (M = 256): the classifier at 768 KB, the layers' products at 256 KB.
int made_panel_rows(int N, int K, int threads) {
    const auto rows_in = [K](int kb) { return std::max(16, kb * 1024 / (K * int(sizeof(float))) / 16 * 16); };
    const int balanced = N / (16 * std::max(1, threads)) / 16 * 16;
    return std::min(N, std::clamp(balanced, rows_in(256), rows_in(768)));
}

void CpuDevice::made_matmul_forward(const float* X, const WeightRows& rows, int M, int N, int K, float* Y,
                                    float alpha, float beta) {
    // Each panel runs on oneDNN on one thread. OpenBLAS re-packs X for every call (2x slower
    // in panels), so a shape that runs on OpenBLAS (forced, or chosen by auto: timed on zeros,
    // as making rows twice would update θ twice) gets its weight made whole; so do bf16
    // products and one token.
    if (M == 1 || gemm_.precision() != Precision::fp32 ||
        gemm_.library_for(false, true, M, N, K, X, K, nullptr, K) != GemmLibrary::onednn)
        return Device::made_matmul_forward(X, rows, M, N, K, Y, alpha, beta);
    ScopedTimer t(profile_.matmul_s);
    profile_.matmul_flops += 2.0 * M * N * K;
    const int P = made_panel_rows(N, K, threads_), panels = (N + P - 1) / P;
    panels_.resize(std::size_t(threads_));
    std::exception_ptr failed;
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int p = 0; p < panels; ++p) {
        try {
            std::vector<float>& w = panels_[std::size_t(omp_get_thread_num())];
            w.resize(std::size_t(P) * std::size_t(K));
            const int r0 = p * P, n = std::min(P, N - r0);
            rows(r0, r0 + n, w.data());
            gemm_on(GemmLibrary::onednn, false, true, M, n, K, alpha, X, K, w.data(), K, beta, Y + r0, N);
        } catch (...) {
#pragma omp critical(made_matmul_failure)
            if (!failed) failed = std::current_exception();
        }
    }
    if (failed) std::rethrow_exception(failed);
}

void CpuDevice::parallel_for(int n, const std::function<void(int, int)>& body) {
    if (n <= 1 || threads_ == 1) return body(0, n);
    std::atomic<int> next{0};
    pool().share([&] {
        for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) body(i, i + 1);
    });
}

SpinPool& CpuDevice::pool() {
    if (!pool_) pool_ = std::make_unique<SpinPool>(threads_);
    return *pool_;
}

void CpuDevice::quant_matmul_forward(const float* X, const QuantMatrix& W, int M, float* Y, float alpha, float beta) {
    const int N = W.rows(), K = W.cols();
    if (const float* w = W.f32()) return matmul_forward(X, w, M, N, K, Y, alpha, beta);
    ScopedTimer t(profile_.matmul_s);
    profile_.matmul_flops += 2.0 * M * N * K;
    if (M == 1) return quant_matvec(pool(), W, X, Y, alpha, beta);
    if (quant_matmul_int8(pool(), W, X, M, Y, alpha, beta)) return;
    // Tiles of about 4 MB of floats: decoded once, read by every row of X.
    const int tile = std::max(1, std::min(N, (1 << 20) / K));
    decoded_.resize(std::size_t(tile) * K);
    for (int r0 = 0; r0 < N; r0 += tile) {
        const int n = std::min(tile, N - r0);
        float* w = decoded_.data();
        for_row_chunks(pool(), n, W.row_bytes(),
                       [&](int a, int b) { W.decode_rows(r0 + a, r0 + b, w + std::size_t(a) * K); });
        gemm_(false, true, M, n, K, alpha, X, K, w, K, beta, Y + r0, N);
    }
}

void CpuDevice::matmul_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX, float alpha,
                                  float beta) {
    ScopedTimer t(profile_.matmul_s);
    profile_.matmul_flops += 2.0 * M * N * K;
    gemm_(false, false, M, K, N, alpha, dY, N, W, K, beta, dX, K);
}

void CpuDevice::weight_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha, float beta) {
    if (M == 1 || gemm_.precision() == Precision::fp32) return matmul_forward(X, W, M, N, K, Y, alpha, beta);
    ScopedTimer t(profile_.matmul_s);
    profile_.matmul_flops += 2.0 * M * N * K;
    gemm_.weight_product(true, M, N, K, alpha, X, K, W, K, beta, Y, N);
}

void CpuDevice::weight_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX, float alpha,
                                  float beta) {
    if (gemm_.precision() == Precision::fp32) return matmul_input_grad(dY, W, M, N, K, dX, alpha, beta);
    ScopedTimer t(profile_.matmul_s);
    profile_.matmul_flops += 2.0 * M * N * K;
    gemm_.weight_product(false, M, K, N, alpha, dY, N, W, K, beta, dX, K);
}

void CpuDevice::matmul_weight_grad(const float* dY, const float* X, int M, int N, int K, float* dW, float alpha) {
    ScopedTimer t(profile_.matmul_s);
    profile_.matmul_flops += 2.0 * M * N * K;
    gemm_(true, false, N, K, M, alpha, dY, N, X, K, 1.0f, dW, K);
}

void CpuDevice::attention_forward(const float* q, const float* k, const float* v, int B, int S, int nh, int nkv, int hd,
                                  float* o, float* probs) {
    ScopedTimer t(profile_.attention_s);
    profile_.attention_flops += 2.0 * B * nh * double(S) * (S + 1) * hd;
    kernels::attention_forward(q, k, v, B, S, nh, nkv, hd, o, probs, gemm_.inner_library());
}

void CpuDevice::attention_backward(const float* q, const float* k, const float* v, const float* probs,
                                   const float* dout, int B, int S, int nh, int nkv, int hd, float* dq, float* dk,
                                   float* dv) {
    ScopedTimer t(profile_.attention_s);
    profile_.attention_flops += 4.0 * B * nh * double(S) * (S + 1) * hd;
    kernels::attention_backward(q, k, v, probs, dout, B, S, nh, nkv, hd, dq, dk, dv, gemm_.inner_library());
}

void check_device(const std::string& name) {
    if (name == "cpu" || name == "ane-sim") return;
    if (name == "ane") return check_ane_framework();
    throw usage_error("--device ", name, ": unknown device (known: cpu, ane-sim, ane)");
}

std::unique_ptr<Device> make_device(const std::string& name, int threads) {
    DeviceOptions options;
    options.threads = threads;
    return make_device(name, options);
}

std::unique_ptr<Device> make_device(const std::string& name, const DeviceOptions& options) {
    check_device(name);
    if (name != "cpu" && options.precision != Precision::fp32)
        throw usage_error("--precision ", precision_name(options.precision), " is for --device cpu");
    if (name == "ane-sim") return make_ane_sim_device(options);
    if (name == "ane") return make_ane_device(options);
    return std::make_unique<CpuDevice>(options.threads, options.gemm, options.precision);
}

}  // namespace ane
