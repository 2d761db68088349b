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

// bf16 products on oneDNN's matmul: each call rounds its operands to bf16 (nearest even) into
// scratch, then multiplies with fp32 accumulation into the fp32 output. One primitive per shape.
class Bf16Gemm {
public:
    Bf16Gemm();
    ~Bf16Gemm();
    Bf16Gemm(const Bf16Gemm&) = delete;
    Bf16Gemm& operator=(const Bf16Gemm&) = delete;
    void operator()(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc);
    std::size_t shapes() const;

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
    // The library this shape runs on; under auto, chosen (timed) now if it has not been, on
    // zeros in place of B when B is null (a weight that does not exist whole).
    GemmLibrary library_for(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                            const float* B, int ldb);
    GemmLibrary requested() const { return requested_; }
    Precision precision() const { return precision_; }
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
