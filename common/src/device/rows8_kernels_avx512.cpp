// The rows8 kernels (Q8_0 and Q4_0 in groups of 8 rows) with 512-bit vectors (AVX-512 BW and
// VNNI: Zen 4/5, Ice Lake and later). One register holds two consecutive 4-byte runs of the 8
// rows, lanes 0-7 run c and lanes 8-15 run c + 1, so each dot-product instruction does twice
// the work of the 256-bit kernel; the input is laid out to match once per call (its runs in
// pairs, each broadcast to its half), and the two halves of each row's sum are added at the
// end of the group. On Zen 5 at one thread, in cache: Q4_0 46 -> 61-65 GB/s of weights, Q8_0
// 84-90 -> 100-104 (the 256-bit kernels are below the memory's read bandwidth there, so a
// model in cache decodes compute-bound: stories15M Q4_0 +10-14%); streamed from memory, both
// 35-39 GB/s.
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 cast and insert intrinsics start from _mm512_undefined_*(), which its own
// -Wuninitialized then reports inside the header.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "int8_kernels.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ane::int8 {

#if defined(__x86_64__)

namespace {

#define ANE_ROWS8_512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

struct alignas(64) RunPair {
    std::int32_t lanes[16];
};

// Block b's 8 runs of x as 4 pairs: pair p holds run 2p in lanes 0-7 and run 2p + 1 in 8-15.
ANE_ROWS8_512 void pair_runs(const std::int8_t* xq, int nb, RunPair* out) {
    const __m512i first = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int b = 0; b < nb; ++b) {
        const __m512i x = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * b)));
        for (int p = 0; p < 4; ++p)
            _mm512_store_si512(out[4 * b + p].lanes,
                               _mm512_permutexvar_epi32(_mm512_add_epi32(first, _mm512_set1_epi32(2 * p)), x));
    }
}

// Helpers of the loop (clang does not carry a function's target into its lambdas).
ANE_ROWS8_512 inline __m512i pair(const RunPair* x, int p) { return _mm512_load_si512(x[p].lanes); }
ANE_ROWS8_512 inline __m512i quants(const std::uint8_t* blk, int i) {
    return _mm512_loadu_si512(blk + 16 + 64 * std::size_t(i));
}

// How far ahead the loop asks for its bytes (as the 256-bit kernels: every line 4 KB ahead).
constexpr std::size_t kPrefetchAhead = 4096;

// out[8g + j] = row 8g + j · x for g < groups. The quants are unsigned (Q4_0's nibbles 0..15,
// Q8_0's q + 128): the offset times the block's sum of x is taken back in the low half only.
template <bool Q4>
ANE_ROWS8_512 void rows8_512(const std::uint8_t* W, int groups, const std::int8_t* xq, const float* xd,
                             const std::int32_t* sx, int nb, float* out) {
    constexpr std::size_t qb = Q4 ? 16 : 32, gbb = 8 * (qb + 2);
    constexpr int offset = Q4 ? 8 : 128;
    thread_local std::vector<RunPair> pairs;
    if (pairs.size() < 4 * std::size_t(nb)) pairs.resize(4 * std::size_t(nb));
    pair_runs(xq, nb, pairs.data());
    const __m512i low4 = _mm512_set1_epi8(15);
    for (int g = 0; g < groups; ++g) {
        const std::uint8_t* blk = W + std::size_t(g) * nb * gbb;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (int b = 0; b < nb; ++b, blk += gbb) {
            for (std::size_t l = 0; l < gbb; l += 64)
                _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetchAhead + l), _MM_HINT_T0);
            const RunPair* x = pairs.data() + 4 * std::size_t(b);
            __m512i s0 = _mm512_maskz_set1_epi32(0x00FF, -offset * sx[b]), s1 = _mm512_setzero_si512();
            if constexpr (Q4) {
                // Runs 0-1 and 2-3: values 0..15 in the low nibbles, 16..31 in the high ones.
                const __m512i v0 = quants(blk, 0), v1 = quants(blk, 1);
                s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(v0, low4), pair(x, 0));
                s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(v1, low4), pair(x, 1));
                s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4), pair(x, 2));
                s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4), pair(x, 3));
            } else {
                s0 = _mm512_dpbusd_epi32(s0, quants(blk, 0), pair(x, 0));
                s1 = _mm512_dpbusd_epi32(s1, quants(blk, 1), pair(x, 1));
                s0 = _mm512_dpbusd_epi32(s0, quants(blk, 2), pair(x, 2));
                s1 = _mm512_dpbusd_epi32(s1, quants(blk, 3), pair(x, 3));
            }
            const __m256i d16 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
            const __m512 scale = _mm512_mul_ps(_mm512_cvtph_ps(d16), _mm512_set1_ps(xd[b]));
            const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
            if (b & 1)
                acc1 = _mm512_fmadd_ps(scale, dot, acc1);
            else
                acc0 = _mm512_fmadd_ps(scale, dot, acc0);
        }
        const __m512 acc = _mm512_add_ps(acc0, acc1);
        const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
        _mm256_storeu_ps(out + 8 * std::size_t(g), _mm256_add_ps(_mm512_castps512_ps256(acc), high));
    }
}

}  // namespace

Rows8 rows8_kernel_avx512(bool q4) { return q4 ? rows8_512<true> : rows8_512<false>; }

#else

Rows8 rows8_kernel_avx512(bool) { return nullptr; }

#endif

}  // namespace ane::int8
