#pragma once
// One token's products on weights kept in their encoding (F16, BF16, Q8_0, Q4_0, and the
// K-quants): y[N] = alpha W[N,K] x + beta y, each row decoded in registers as it streams past,
// with the widest vector unit the CPU has (chosen at run time). K-quants decode a row at a
// time into a small buffer, then take the float32 kernel.
#include <functional>

#include "ane/device/matvec.hpp"
#include "ane/model/quant_matrix.hpp"

namespace ane {

// Rows [row_begin, row_end) on one thread with the kernel of `isa` (which the CPU must have).
void quant_matvec_rows(MatvecIsa isa, const QuantMatrix& W, const float* x, int row_begin, int row_end, float* y,
                       float alpha, float beta);
// All rows over the pool, with best_matvec_isa().
void quant_matvec(SpinPool& pool, const QuantMatrix& W, const float* x, float* y, float alpha, float beta);

// Calls rows(begin, end) over the pool for N rows of row_bytes each: chunks that threads take
// as they come (a thread sharing its core with another process takes fewer), boundaries even.
// Small matrices run on the calling thread alone.
void for_row_chunks(SpinPool& pool, int N, std::size_t row_bytes, const std::function<void(int, int)>& rows);

}  // namespace ane
