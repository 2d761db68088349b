#pragma once
// One token's matrix-vector products (decoding): y[N] = alpha W[N,K] x + beta y, W row-major.
// Bound by reading W once: rows are split over a SpinPool's threads and each row's dot product
// runs on the widest vector unit the CPU has, chosen at run time (AVX-512, AVX2+FMA, or
// portable C++ elsewhere).
#include <cstddef>
#include <functional>
#include <string>

#include "ane/spin_pool.hpp"

namespace ane {

enum class MatvecIsa { portable, avx2, avx512 };
// The widest kernel this CPU runs.
MatvecIsa best_matvec_isa();
const char* matvec_isa_name(MatvecIsa isa);

// Rows [row_begin, row_end) on one thread with the kernel of `isa` (which the CPU must have).
void matvec_rows(MatvecIsa isa, const float* W, const float* x, int K, int row_begin, int row_end, float* y,
                 float alpha, float beta);
// Calls rows(begin, end) over the pool for N rows of row_bytes each: chunks that threads take
// as they come (a thread sharing its core with another process takes fewer), boundaries a
// multiple of `granule`. Small matrices run on the calling thread alone.
void for_row_chunks(SpinPool& pool, int N, std::size_t row_bytes, const std::function<void(int, int)>& rows,
                    int granule = 2);
// All N rows over the pool, with best_matvec_isa().
void matvec(SpinPool& pool, const float* W, const float* x, int N, int K, float* y, float alpha, float beta);

}  // namespace ane
