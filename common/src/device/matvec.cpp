#include "ane/device/matvec.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "cpu_features.hpp"
#include "simd_sums.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ane {

namespace {

#if defined(__x86_64__)
using simd::hsum256;
#endif

inline float finish(float dot, float alpha, float beta, float y) { return beta == 0.0f ? alpha * dot : alpha * dot + beta * y; }

// The columns [k, K) a vector loop left, added to `dot`.
inline float dot_tail(const float* w, const float* x, int k, int K, float dot) {
    for (; k < K; ++k) dot += w[k] * x[k];
    return dot;
}

void rows_portable(const float* W, const float* x, int K, int r0, int r1, float* y, float alpha, float beta) {
    for (int r = r0; r < r1; ++r) {
        const float* w = W + std::int64_t(r) * K;
        float acc[8] = {};
        int k = 0;
        for (; k + 8 <= K; k += 8)
            for (int j = 0; j < 8; ++j) acc[j] += w[k + j] * x[k + j];
        float dot = dot_tail(w, x, k, K, 0.0f);
        for (float a : acc) dot += a;
        y[r] = finish(dot, alpha, beta, y[r]);
    }
}

#if defined(__x86_64__)

// Four rows at a time (four weight streams in flight), two accumulators per row, on 256-bit
// vectors for AVX-512 CPUs too: on a Zen 5 the same loop on 512-bit ones, a line of each row
// per step, streamed slower (decoding F32 at 1 thread, interleaved runs: stories15M 579-587
// against 659-669 tok/s, stories110M 62-68 against 67-69; at 2 threads 673-743 against
// 782-850 and 75-96 against 106-109).
__attribute__((target("avx2,fma"))) void rows_avx2(const float* W, const float* x, int K, int r0, int r1, float* y,
                                                   float alpha, float beta) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float* w0 = W + std::int64_t(r) * K;
        const float* w[4] = {w0, w0 + K, w0 + 2 * std::int64_t(K), w0 + 3 * std::int64_t(K)};
        __m256 acc[4][2];
        for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
        // Each stream asks for the same columns eight rows on (9-64 KB ahead for K = 288-2048),
        // which never lands in a row another stream is reading. Under ANE_MAX_CPU_ISA=avx2 on
        // a Zen 5, stories15M decode at 1 thread: none 210-220 tok/s, 2 rows on 290, 4 rows
        // 450-530, 8 rows 520-665, 12 rows 636-662, 16 rows 616-630 (the old two-row kernel
        // with 2 rows on: 400-500).
        const std::int64_t ahead = 8 * std::int64_t(K);
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
            for (int i = 0; i < 4; ++i) {
                _mm_prefetch(reinterpret_cast<const char*>(w[i] + k + ahead), _MM_HINT_T0);
                acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(w[i] + k), x0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(_mm256_loadu_ps(w[i] + k + 8), x1, acc[i][1]);
            }
        }
        for (int i = 0; i < 4; ++i)
            y[r + i] = finish(dot_tail(w[i], x, k, K, hsum256(_mm256_add_ps(acc[i][0], acc[i][1]))), alpha, beta,
                              y[r + i]);
    }
    for (; r < r1; ++r) {
        const float* a = W + std::int64_t(r) * K;
        __m256 a0 = _mm256_setzero_ps();
        int k = 0;
        for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(x + k), a0);
        y[r] = finish(dot_tail(a, x, k, K, hsum256(a0)), alpha, beta, y[r]);
    }
}

#endif

}  // namespace

MatvecIsa best_matvec_isa() {
#if defined(__x86_64__)
    static const MatvecIsa isa = cpu::has_avx512f() ? MatvecIsa::avx512
                                 : cpu::has_avx2() && __builtin_cpu_supports("fma") && cpu::has_f16c()
                                     ? MatvecIsa::avx2
                                     : MatvecIsa::portable;
    return isa;
#else
    return MatvecIsa::portable;
#endif
}

const char* matvec_isa_name(MatvecIsa isa) {
    switch (isa) {
        case MatvecIsa::avx512: return "AVX-512";
        case MatvecIsa::avx2: return "AVX2";
        case MatvecIsa::portable: return "portable C++";
    }
    return "?";
}

void matvec_rows(MatvecIsa isa, const float* W, const float* x, int K, int row_begin, int row_end, float* y,
                 float alpha, float beta) {
#if defined(__x86_64__)
    if (isa == MatvecIsa::avx512 || isa == MatvecIsa::avx2)
        return rows_avx2(W, x, K, row_begin, row_end, y, alpha, beta);
#endif
    (void)isa;
    rows_portable(W, x, K, row_begin, row_end, y, alpha, beta);
}

void for_row_chunks(SpinPool& pool, int N, std::size_t row_bytes, const std::function<void(int, int)>& rows,
                    int granule) {
    // Below ~128 KB of weights one thread is done before the others would start, and a chunk
    // under ~64 KB costs more in passing its counter between cores than it saves. (Decoding
    // stories15M at 2 threads, Zen 5: 64 KB and 8 chunks a thread gave Q4_0 3300 tok/s, Q8_0
    // 2160, below one thread's 3800 and 2900; these limits 4300 and 3000, the 110M shape no
    // slower.)
    const double bytes = double(N) * double(row_bytes);
    if (pool.threads() == 1 || bytes < 131072.0) return rows(0, N);
    const int units = (N + granule - 1) / granule;  // the kernels take rows in pairs, fours or eights
    const int chunks = std::min(units, std::max(pool.threads(), std::min(8 * pool.threads(), int(bytes / 65536.0))));
    std::atomic<int> next{0};
    pool.share([&] {
        for (int c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) {
            const int r0 = std::min(N, granule * int(std::int64_t(units) * c / chunks));
            const int r1 = std::min(N, granule * int(std::int64_t(units) * (c + 1) / chunks));
            rows(r0, r1);
        }
    });
}

void matvec(SpinPool& pool, const float* W, const float* x, int N, int K, float* y, float alpha, float beta) {
    const MatvecIsa isa = best_matvec_isa();
    for_row_chunks(pool, N, std::size_t(K) * sizeof(float),
                   [&](int r0, int r1) { matvec_rows(isa, W, x, K, r0, r1, y, alpha, beta); });
}

}  // namespace ane
