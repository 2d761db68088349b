#pragma once
// The cpu device's matrix products: OpenBLAS (Accelerate on Apple) or oneDNN, chosen per
// shape at run time. `auto` times both libraries on a shape the first time it is asked for
// (on the call's own operands, into scratch output) and keeps the faster for the process;
// a forced library gives the same bits run after run.
#include <map>
#include <memory>
#include <string>
#include <tuple>

namespace ane {

enum class GemmLibrary { blas, onednn, automatic };
// "openblas" (also "blas", "accelerate"), "onednn", "auto"; else a UsageError naming them.
GemmLibrary parse_gemm_library(const std::string& text);
const char* gemm_library_name(GemmLibrary library);  // "OpenBLAS"/"Accelerate", "oneDNN", "auto"
// This build has oneDNN (Linux x86-64 with libdnnl).
bool onednn_available();
// "oneDNN 2.6.3, avx512_core_bf16 JIT", or why there is none.
std::string onednn_description();

// The leading block of an M x N x K product that `auto` times both libraries on: the largest
// dimension halved (not below 256) until at most 2^27 multiply-adds remain.
struct GemmTrial {
    int M, N, K;
};
GemmTrial gemm_trial_shape(int M, int N, int K);

// The precision of the products (--precision): fp32, or bf16 operands with fp32 accumulation
// (master weights, gradients and optimizer state stay fp32).
enum class Precision { fp32, bf16 };
// "fp32" or "bf16"; bf16 only where this build has oneDNN and the CPU has bf16 instructions
// (AVX512_BF16 or AMX), else a UsageError saying which is missing.
Precision parse_precision(const std::string& text);
// Why bf16 products cannot run here (no oneDNN, no bf16 instructions), or "" when they can.
std::string bf16_missing();
const char* precision_name(Precision precision);

// bf16 products: the operands rounded to bf16 (nearest even), fp32 accumulation into the fp32
// output. Our own kernel where the CPU has AVX512_BF16 (packing rounds), else (AMX) oneDNN's
// matmul, one primitive per shape, on operands rounded into scratch by each call.
class Bf16Gemm {
public:
    enum class Kernel { best, onednn };  // onednn: oneDNN's matmul even where ours runs (tests, benchmarks)
    explicit Bf16Gemm(Kernel kernel = Kernel::best);
    ~Bf16Gemm();
    Bf16Gemm(const Bf16Gemm&) = delete;
    Bf16Gemm& operator=(const Bf16Gemm&) = delete;
    void operator()(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc);
    // The same with B one of the model's weights, unchanged until forget_weights(): our kernel
    // packs it once and reuses it (oneDNN's path rounds it again).
    void weight_product(bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                        int ldb, float beta, float* C, int ldc);
    void forget_weights();
    std::size_t shapes() const;  // oneDNN primitives made
    const char* kernel_name() const;  // "our AVX512_BF16 kernel" or "oneDNN"

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

class Gemm {
public:
    explicit Gemm(GemmLibrary requested, Precision precision = Precision::fp32);
    // Row-major C[M,N] = alpha op(A)[M,K] · op(B)[K,N] + beta C.
    void operator()(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc);
    // The same with B one of the model's weights (unchanged until forget_weights()), A not
    // transposed: bf16 products keep it packed between calls.
    void weight_product(bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                        int ldb, float beta, float* C, int ldc);
    void forget_weights() {
        if (bf16_) bf16_->forget_weights();
    }
    // The library this shape runs on; under auto, chosen (timed) now if it has not been, on
    // zeros in place of B when B is null (a weight that does not exist whole).
    GemmLibrary library_for(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                            const float* B, int ldb);
    GemmLibrary requested() const { return requested_; }
    Precision precision() const { return precision_; }
    const char* bf16_kernel_name() const { return bf16_ ? bf16_->kernel_name() : "none"; }
    // For the small products inside parallel regions (attention), too many to time: the
    // requested library, oneDNN under auto (its JIT kernels follow the CPU).
    GemmLibrary inner_library() const {
        return requested_ == GemmLibrary::automatic ? GemmLibrary::onednn : requested_;
    }
    // "matrix products: auto (oneDNN for 9 shapes, OpenBLAS for 3; choosing took 41 ms)".
    std::string report() const;

private:
    using Key = std::tuple<bool, bool, int, int, int>;
    struct Choice {
        GemmLibrary library;
        double blas_s = 0, onednn_s = 0;  // timed under auto
    };
    GemmLibrary requested_;
    Precision precision_;
    std::unique_ptr<Bf16Gemm> bf16_;
    std::map<Key, Choice> chosen_;
    double choosing_s_ = 0;
};

// One product on one library, on the calling thread's OpenMP team (OpenBLAS and oneDNN both
// run single-threaded when called inside a parallel region).
void gemm_on(GemmLibrary library, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
             int lda, const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace ane
