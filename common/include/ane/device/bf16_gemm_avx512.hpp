#pragma once
// Our own bf16 matrix product for CPUs with AVX512_BF16 (Zen 4/5, Cooper Lake, Sapphire Rapids):
// the operands rounded to bf16 (nearest even, as float_to_bf16) while they are packed into the
// kernel's layout, so no separate rounding pass is paid, and fp32 accumulation by VDPBF16PS.
#include <cstdint>
#include <vector>

namespace ane::bf16 {

// Whether this CPU runs the kernels below (AVX-512 F, BW, VL and BF16).
bool available();

// op(B) [K, N] packed for the kernel, ready to be multiplied again and again: a weight packed
// once after each change serves every product that reads it until the next.
struct PackedB {
    int K = 0, N = 0;
    std::vector<std::uint32_t> bits;  // pairs of bf16 along k, in blocks of k and panels of columns
};
void pack_b(bool trans_b, int K, int N, const float* B, int ldb, PackedB& out, int threads);

// Row-major C[M, N] = alpha op(A)[M, K] · op(B)[K, N] + beta C on `threads` OpenMP threads.
void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
          int ldb, float beta, float* C, int ldc, int threads);
void gemm(bool trans_a, int M, float alpha, const float* A, int lda, const PackedB& B, float beta, float* C, int ldc,
          int threads);

}  // namespace ane::bf16
