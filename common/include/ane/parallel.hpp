#pragma once
// Deterministic parallel reductions: each thread sums a fixed static chunk and the partials
// are added in thread order, so the same thread count always gives the same bits (an
// OpenMP reduction clause combines partials in whatever order threads finish).
#include <omp.h>

#include <cstdint>
#include <vector>

namespace ane {

template <typename T, typename F>
T parallel_sum(std::int64_t n, F term) {
    const int threads = omp_get_max_threads();
    std::vector<T> partial(static_cast<std::size_t>(threads), T(0));
#pragma omp parallel num_threads(threads)
    {
        const int id = omp_get_thread_num(), nt = omp_get_num_threads();
        const std::int64_t begin = n * id / nt, end = n * (id + 1) / nt;
        T s = T(0);
        for (std::int64_t i = begin; i < end; ++i) s += term(i);
        partial[static_cast<std::size_t>(id)] = s;
    }
    T total = T(0);
    for (T p : partial) total += p;
    return total;
}

}  // namespace ane
