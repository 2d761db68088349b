#pragma once
// The cpu device's matrix products: OpenBLAS (Accelerate on Apple) or oneDNN, chosen per
// shape at run time. `auto` times both libraries on a shape the first time it is asked for
// (on the call's own operands, into scratch output) and keeps the faster for the process;
// a forced library gives the same bits run after run.
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace ane {

enum class GemmLibrary { blas, onednn, automatic };
// "openblas" (also "blas", "accelerate"), "onednn", "auto"; else a UsageError naming them.
GemmLibrary parse_gemm_library(const std::string& text);
const char* gemm_library_name(GemmLibrary library);  // "OpenBLAS"/"Accelerate", "oneDNN", "auto"
// This build has oneDNN (Linux x86-64 with libdnnl).
bool onednn_available();
// "oneDNN 2.6.3, avx512_core_bf16 JIT", or why there is none.
std::string onednn_description();

class Gemm {
public:
    explicit Gemm(GemmLibrary requested);
    // Row-major C[M,N] = alpha op(A)[M,K] · op(B)[K,N] + beta C.
    void operator()(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                    const float* B, int ldb, float beta, float* C, int ldc);
    // The library this shape runs on; under auto, chosen (timed) now if it has not been.
    GemmLibrary library_for(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda,
                            const float* B, int ldb);
    GemmLibrary requested() const { return requested_; }
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
    std::map<Key, Choice> chosen_;
    double choosing_s_ = 0;
    std::vector<float> scratch_;
};

// One product on one library, on the calling thread's OpenMP team (OpenBLAS and oneDNN both
// run single-threaded when called inside a parallel region).
void gemm_on(GemmLibrary library, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A,
             int lda, const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace ane
