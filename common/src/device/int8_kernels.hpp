#pragma once
// The integer kernels of Q8_0, Q4_0 (and in the ggml layout Q5_0, Q4_1, Q5_1) rows, and of the
// K-quants (inside the cpu device; quant_matvec.cpp calls them): the input quantized to Q8_0
// blocks with float scales, then per block d_w d_x Σ q_w q_x (+ m d_x Σ q_x for the _1 types),
// as llama.cpp computes it. Each kernel needs the CPU feature its Int8Dot names; the getters
// return nullptr where there is none.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ane/device/quant_matvec.hpp"

namespace ane::int8 {

constexpr int kBlock = 32;  // values per Q8_0 / Q4_0 block

// The vector as Q8_0 blocks with float scales: d = max|x| / 127, q = round(x / d) (nearest
// even), and each block's sum of q; K a multiple of 32.
void quantize_vector(const float* x, int K, std::int8_t* q, float* d, std::int32_t* sum);

struct QuantizedVector {
    std::vector<std::int8_t> q;
    std::vector<float> d;
    std::vector<std::int32_t> sum;  // of each block's q (the rows8 kernels' offset)
    void set(const float* x, int K);
};

// A token as the rows8 kernels read it.
struct TokenBlocks {
    const std::int8_t* q;
    const float* d;
    const std::int32_t* sum;
};

// The ggml layout: out[r] = row r of W (rows of row_bytes) · x for r < rows; nb blocks a row.
using RowsKernel = void (*)(const std::uint8_t* W, std::size_t row_bytes, int rows, const std::int8_t* xq,
                            const float* xd, const std::int32_t* xsum, int nb, float* out);
RowsKernel rows_kernel(Int8Dot kind, ggml::Type type);  // Q8_0, Q4_0, Q5_0, Q4_1, Q5_1

// The ggml layout against T (1..max_tokens) tokens: out[t * ldo + r] = row r · token t.
int max_tokens(Int8Dot kind);  // 8 with VNNI (the quants unpacked once for 8), else 4
using RowsTokens = void (*)(const std::uint8_t* W, std::size_t row_bytes, int rows, const TokenBlocks* tokens, int nb,
                            float* out, std::size_t ldo);
RowsTokens rows_tokens_kernel(Int8Dot kind, ggml::Type type, int T);

// Whether the CPU has AVX-512 BW, VL and VNNI (and F16C): the 512-bit integer kernels.
bool has_int8_avx512();

// The rows8 layout (QuantMatrix::Layout): out[8g + j] = row 8g + j · x for g < groups, W at
// the first group's bytes. VNNI, and AVX2 for Q4_0 (whose byte products' pairs fit 16 bits);
// null otherwise. avx512_vnni on a CPU with has_int8_avx512() takes the 512-bit kernel
// (rows8_kernels_avx512.cpp), which pays a few instructions per block of x each call.
using Rows8 = void (*)(const std::uint8_t* W, int groups, const std::int8_t* xq, const float* xd,
                       const std::int32_t* sum, int nb, float* out);
Rows8 rows8_kernel(Int8Dot kind, bool q4);
Rows8 rows8_kernel_avx512(bool q4);

// The rows8 layout against T (1..4) tokens: out[t * ldo + 8g + j] = row 8g + j · token t.
using Rows8Tokens = void (*)(const std::uint8_t* W, int groups, const TokenBlocks* tokens, int nb, float* out,
                             std::size_t ldo);
Rows8Tokens rows8_tokens_kernel(Int8Dot kind, bool q4, int T);

// A vector as llama.cpp's Q8_K blocks (what K-quant rows are multiplied with): per 256 values
// d = max|x| / 127 and q = round(x / d), nearest even; the sums of q over each 16 and each 32
// (int16 suffices); K a multiple of 256.
struct KVector {
    std::vector<std::int8_t> q;
    std::vector<float> d;
    std::vector<std::int16_t> sum16, sum32;
    void set(const float* x, int K);
};

// K-quant rows (Q4_K, Q5_K, Q6_K: super-blocks of 256, rows of row_bytes) against T (1..4)
// tokens: out[t * ldo + r] = row r · token t for r < rows.
using KRowsKernel = void (*)(const std::uint8_t* W, std::size_t row_bytes, int rows, const KVector* const* tokens,
                             int K, float* out, std::size_t ldo);
// With VNNI (either kind) on a CPU with AVX-512 BW and VNNI, the 512-bit kernels
// (kquant_kernels_avx512.cpp); AVX2 for the other kinds but none.
KRowsKernel k_rows_kernel(Int8Dot kind, ggml::Type type, int T);
KRowsKernel k_rows_kernel_avx512(ggml::Type type, int T);

}  // namespace ane::int8
