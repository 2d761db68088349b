#pragma once
// One token's products on weights kept in their encoding (F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1,
// Q5_1 and the K-quants): y[N] = alpha W[N,K] x + beta y, each row decoded in registers as it
// streams past, with the widest vector unit the CPU has (chosen at run time). On a CPU without
// AVX2 the integer types decode a row at a time into a small buffer, then take the float32
// kernel.
#include "ane/device/matvec.hpp"
#include "ane/model/quant_matrix.hpp"

namespace ane {

// Q8_0, Q4_0, Q5_0, Q4_1 and Q5_1 rows can instead take integer dot products, as llama.cpp
// does: the vector is quantized to Q8_0 blocks (float scales) once per product, so the result
// carries that rounding (about 0.4% of each block's magnitude); K-quant rows the same way
// against Q8_K blocks (one scale per 256 values).
enum class Int8Dot { none, avx2, avx_vnni, avx512_vnni };
// AVX512-VNNI where the CPU has AVX-512 BW and VL too (the rows8 and K-quant products then
// take 512-bit kernels), else AVX-VNNI, else AVX512-VNNI on 256-bit vectors, else AVX2
// (maddubs), else none (float decoding).
Int8Dot best_int8_dot();
const char* int8_dot_name(Int8Dot kind);
// Whether `kind`'s integer kernels take `type` (Q8_0 or Q4_0) regrouped by 8 rows
// (QuantMatrix::interleave_rows8): with VNNI both, with AVX2 alone Q4_0.
bool rows8_integer(Int8Dot kind, ggml::Type type);
// What the int8 kernels multiply by: x quantized to Q8_0 blocks and back (K a multiple of 32).
void quant_vector_round_trip(const float* x, int K, float* out);
// What the K-quant (Q4_K, Q5_K, Q6_K) kernels multiply by: x as Q8_K blocks of 256 and back.
void k_vector_round_trip(const float* x, int K, float* out);

// Rows [row_begin, row_end) on one thread with the kernel of `isa` (which the CPU must have);
// Q8_0/Q4_0 and the K-quants with `int8`'s integer dot products unless it is none.
void quant_matvec_rows(MatvecIsa isa, const QuantMatrix& W, const float* x, int row_begin, int row_end, float* y,
                       float alpha, float beta, Int8Dot int8 = Int8Dot::none);
// Y[M, N] = alpha X[M, K] · Wᵀ + beta Y for Q8_0/Q4_0 on the integer kernels over the pool,
// every token quantized as above (so a prompt computes what its tokens one at a time would):
// a rows8 matrix reads its weights once per four tokens, the ggml layout once per token.
// False, doing nothing, for other types or a CPU without the integer kernels.
bool quant_matmul_int8(SpinPool& pool, const QuantMatrix& W, const float* X, int M, float* Y, float alpha,
                       float beta);
// All rows over the pool, with best_matvec_isa() and best_int8_dot().
void quant_matvec(SpinPool& pool, const QuantMatrix& W, const float* x, float* y, float alpha, float beta);


}  // namespace ane
