// bf16 products with AVX512_BF16 (see bf16_gemm_avx512.hpp). VDPBF16PS multiplies pairs of
// bf16 along k and adds both products to one fp32 lane, so both operands are packed in pairs of
// consecutive k: B in panels of 48 columns (three registers a pair of k), A in micro-panels of 8
// rows (one 32-bit broadcast a row and pair). The kernel keeps an 8 x 48 tile of C in 24
// registers (435 GFLOP/s on one Zen 5 core in L1, 96% of VDPBF16PS's peak). Loops as GotoBLAS
// orders them: a block of k, then a block of A's rows packed into L2, then each panel of B
// against every micro-panel of that block. Each thread takes its own rows of A; B is packed
// once, by all threads, before the products (or once per weights_changed() for a weight).
#include "ane/device/bf16_gemm_avx512.hpp"

#include <omp.h>

#include "cpu_features.hpp"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ane::bf16 {

#if defined(__x86_64__)

namespace {

#define ANE_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

constexpr int MR = 8, NR = 48, NV = NR / 16;
// Blocks of k up to 512 (a B panel of 48 KB, read from L2 as fast as the kernel needs it): at
// 320 (a panel in L1) the extra passes over C cost more (Zen 5, 1 thread: 4% over all shapes).
constexpr int kMaxKc = 512;
constexpr int kABlockBytes = 384 << 10;  // a block of A's rows, in L2
constexpr int kCBlockBytes = 384 << 10;  // their rows of C, kept in L2 across blocks of k

// K cut into blocks of kc (even) but the last.
struct KBlocks {
    int kc, count;
    int size(int b, int K) const { return std::min(kc, K - b * kc); }
};
KBlocks k_blocks(int K) {
    const int n = (K + kMaxKc - 1) / kMaxKc;
    int kc = (K + n - 1) / n;
    kc += kc & 1;
    return {kc, (K + kc - 1) / kc};
}

int panels_of(int N) { return (N + NR - 1) / NR; }

// Where block b's panel p starts in a PackedB (uint32 pairs).
std::size_t panel_offset(const KBlocks& kb, int b, int p, int K, int N) {
    const std::size_t full_pairs = std::size_t(kb.kc / 2);
    const std::size_t pairs = std::size_t((kb.size(b, K) + 1) / 2);
    return (std::size_t(b) * full_pairs * std::size_t(panels_of(N)) + std::size_t(p) * pairs) * NR;
}

ANE_BF16 inline __mmask16 first_lanes(int n) {
    return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << std::max(n, 0)) - 1);
}

// Rounding by VCVTNE2PS2BF16: nearest even as float_to_bf16 rounds, NaN quieted; a denormal
// becomes zero, as VDPBF16PS would read it anyway.
// Lane i: (lo[i], hi[i]) as a pair.
ANE_BF16 inline __m512i pairs_of(__m512 lo, __m512 hi) {
    const __m512i halves = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // lo's 16 values, then hi's
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                                22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(interleave, halves);
}

// 32 consecutive floats (the first n of them, the rest zero) as 16 pairs.
ANE_BF16 inline __m512i pairs_along(const float* x, int n) {
    const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(n), x);
    const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(n - 16), x + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

// 8 registers of 16 pairs (register i: pairs q = 0..15 of column i) written as pairs q < n:
// out[q * stride + i]. An 8 x 16 transpose of 32-bit lanes, in registers.
ANE_BF16 void store_transposed(const __m512i (&r)[8], int n, std::uint32_t* out, int stride) {
    __m512i t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; ++h) {  // rows 0-3, then 4-7
        __m512i* o = u + 4 * h;
        const __m512i* s = t + 4 * h;
        o[0] = _mm512_unpacklo_epi64(s[0], s[2]);
        o[1] = _mm512_unpackhi_epi64(s[0], s[2]);
        o[2] = _mm512_unpacklo_epi64(s[1], s[3]);
        o[3] = _mm512_unpackhi_epi64(s[1], s[3]);
    }
    // u[c] holds, in its 128-bit block L, column q = 4L + c of rows 0-3; u[c + 4] of rows 4-7.
    for (int c = 0; c < 4; ++c) {
        const __m512i lo = _mm512_shuffle_i32x4(u[c], u[c + 4], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512i hi = _mm512_shuffle_i32x4(u[c], u[c + 4], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512i q01 = _mm512_shuffle_i32x4(lo, lo, _MM_SHUFFLE(3, 1, 2, 0));  // q = c, 4 + c
        const __m512i q23 = _mm512_shuffle_i32x4(hi, hi, _MM_SHUFFLE(3, 1, 2, 0));  // q = 8 + c, 12 + c
        const __m256i v[4] = {_mm512_castsi512_si256(q01), _mm512_extracti64x4_epi64(q01, 1),
                              _mm512_castsi512_si256(q23), _mm512_extracti64x4_epi64(q23, 1)};
        for (int L = 0; L < 4; ++L)
            if (4 * L + c < n)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + std::size_t(4 * L + c) * stride), v[L]);
    }
}

// `width` columns of op(X) at (k0.., c0..) in pairs of k, `kc` values of k: out[q * stride + j]
// holds pair q of column j. X(k, c) at X[k * ldx + c] (k-major, width <= 16) or X[c * ldx + k]
// (c-major, width <= 8; the other of 8 columns are written as zeros).
ANE_BF16 void pack_pairs(bool k_major, const float* X, int ldx, int k0, int kc, int c0, int width,
                         std::uint32_t* out, int stride) {
    const int pairs = (kc + 1) / 2;
    if (k_major) {
        const __mmask16 m = first_lanes(width);
        for (int q = 0; q < pairs; ++q) {
            const int k = k0 + 2 * q;
            const __m512 lo = _mm512_maskz_loadu_ps(m, X + std::size_t(k) * ldx + c0);
            const __m512 hi = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(m, X + std::size_t(k + 1) * ldx + c0)
                                             : _mm512_setzero_ps();
            _mm512_mask_storeu_epi32(out + std::size_t(q) * stride, m, pairs_of(lo, hi));
        }
        return;
    }
    // c-major: each column's k are contiguous; 16 pairs of 8 columns at a time, transposed.
    for (int q = 0; q < pairs; q += 16) {
        __m512i r[8];
        for (int j = 0; j < 8; ++j)
            r[j] = j < width ? pairs_along(X + std::size_t(c0 + j) * ldx + k0 + 2 * q, kc - 2 * q)
                             : _mm512_setzero_si512();
        store_transposed(r, pairs - q, out + std::size_t(q) * stride, stride);
    }
}

// One panel of B: kc values of k from k0, NR columns from n0 (zeros past N).
ANE_BF16 void pack_b_panel(bool trans_b, const float* B, int ldb, int k0, int kc, int n0, int N, std::uint32_t* out) {
    const int pairs = (kc + 1) / 2;
    if (n0 + NR > N) std::memset(out, 0, std::size_t(pairs) * NR * sizeof(std::uint32_t));
    const int step = trans_b ? 8 : 16;
    for (int c = 0; c < NR && n0 + c < N; c += step)
        pack_pairs(!trans_b, B, ldb, k0, kc, n0 + c, std::min(step, N - n0 - c), out + c, NR);
}

// Where micro-panel i of a packed block of A starts: a line past a multiple of MR * pairs. At
// kc = 512 a panel is 8 KB, and the transposed packing, which writes every panel of the block
// for each pair of k, would put all its writes in one set of L1.
std::size_t a_panel_stride(int pairs) { return std::size_t(MR) * pairs + 16; }

// `count` micro-panels of A (MR rows each from m0, zeros past M), kc values of k from k0: panel
// i at out + i * a_panel_stride(pairs).
ANE_BF16 void pack_a_block(bool trans_a, const float* A, int lda, int k0, int kc, int m0, int count, int M,
                           std::uint32_t* out) {
    const int pairs = (kc + 1) / 2;
    const std::size_t panel = a_panel_stride(pairs);
    if (!trans_a) {  // A(m, k) at A[m * lda + k]
        for (int i = 0; i < count; ++i) {
            const int r0 = m0 + i * MR;
            // The next micro-panel's rows, a stride apart each: as this one is packed, they come
            // into L2 (a large A from memory, as the classifier's gradient: 5% faster on Zen 5).
            if (r0 + 2 * MR <= M)
                for (int j = 0; j < MR; ++j) {
                    const char* row = reinterpret_cast<const char*>(A + std::size_t(r0 + MR + j) * lda + k0);
                    for (int at = 0; at < kc * 4; at += 64) _mm_prefetch(row + at, _MM_HINT_T1);
                }
            pack_pairs(false, A, lda, k0, kc, r0, std::min(MR, M - r0), out + i * panel, MR);
        }
        return;
    }
    // A(m, k) at A[k * lda + m]: two micro-panels' rows are 16 contiguous floats; along each
    // pair of rows of storage in turn (long runs, for the prefetchers).
    for (int q = 0; q < pairs; ++q) {
        const int k = k0 + 2 * q;
        const float* lo_row = A + std::size_t(k) * lda;
        const float* hi_row = 2 * q + 1 < kc ? lo_row + lda : nullptr;
        for (int i = 0; i < count; i += 2) {
            const int r0 = m0 + i * MR;
            const __mmask16 m = first_lanes(std::min(count - i >= 2 ? 2 * MR : MR, M - r0));
            const __m512 lo = _mm512_maskz_loadu_ps(m, lo_row + r0);
            const __m512 hi = hi_row ? _mm512_maskz_loadu_ps(m, hi_row + r0) : _mm512_setzero_ps();
            const __m512i p = pairs_of(lo, hi);
            std::uint32_t* at = out + i * panel + std::size_t(q) * MR;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(at), _mm512_castsi512_si256(p));
            if (count - i >= 2)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(at + panel), _mm512_extracti64x4_epi64(p, 1));
        }
    }
}

// C[rows, cols] (rows <= MR, cols <= NR) = alpha a·b + (first ? beta C : C).
ANE_BF16 void kernel(int pairs, const std::uint32_t* a, const std::uint32_t* b, float* C, int ldc, int rows,
                     int cols, float alpha, float beta, bool first) {
    __m512 acc[MR][NV];
    for (int i = 0; i < MR; ++i)
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
    for (int q = 0; q < pairs; ++q) {
        const std::uint32_t* bq = b + std::size_t(q) * NR;
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bq);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bq + 16);
        const __m512bh b2 = (__m512bh)_mm512_loadu_si512(bq + 32);
        const std::uint32_t* aq = a + std::size_t(q) * MR;
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32(int(aq[i]));
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
            acc[i][2] = _mm512_dpbf16_ps(acc[i][2], ai, b2);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int i = 0; i < rows; ++i)
        for (int v = 0; v < NV; ++v) {
            const __mmask16 m = first_lanes(cols - 16 * v);
            if (!m) break;
            float* c = C + std::size_t(i) * ldc + 16 * v;
            __m512 r = _mm512_mul_ps(acc[i][v], va);
            if (!first) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, c));
            else if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, c), r);
            _mm512_mask_storeu_ps(c, m, r);
        }
}

// The products on a packed B: each thread its own rows of A, in blocks packed into L2. With
// several blocks of k, a block of rows goes through all of them while its rows of C stay in
// L2, unless C's rows are so wide that the block would be too thin to reuse B's panels.
void multiply(bool trans_a, int M, float alpha, const float* A, int lda, const PackedB& B, float beta, float* C,
              int ldc, int threads) {
    const int K = B.K, N = B.N, np = panels_of(N);
    const KBlocks kb = k_blocks(K);
    const int micro = (M + MR - 1) / MR;
    threads = std::max(1, std::min(threads, micro));
    const int per_thread = (micro + threads - 1) / threads;  // micro-panels
    const int a_limit = std::max(1, kABlockBytes / (kb.kc * 2 * MR));
    const int c_limit = kCBlockBytes / (N * 4 * MR);
    const bool rows_outer = kb.count > 1 && c_limit >= 8;
    const int block = std::min({per_thread, a_limit, rows_outer ? c_limit : a_limit});
    const std::size_t a_size = std::size_t(block) * a_panel_stride(kb.kc / 2);
    // Kept from call to call (a fresh buffer of this size is mapped and faulted in each time),
    // by the calling thread: the team's threads reach it through `blocks`, not by its name.
    thread_local std::vector<std::uint32_t> scratch;
    if (scratch.size() < a_size * std::size_t(threads)) scratch.resize(a_size * std::size_t(threads));
    std::uint32_t* const blocks = scratch.data();
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        const int mp0 = t * per_thread, mp1 = std::min(micro, mp0 + per_thread);
        std::uint32_t* a = blocks + a_size * std::size_t(t);
        const auto run = [&](int b, int ip) {
            const int k0 = b * kb.kc, kc = kb.size(b, K), pairs = (kc + 1) / 2;
            const int count = std::min(block, mp1 - ip);
            pack_a_block(trans_a, A, lda, k0, kc, ip * MR, count, M, a);
            for (int p = 0; p < np; ++p) {
                const std::uint32_t* bp = B.bits.data() + panel_offset(kb, b, p, K, N);
                const int n0 = p * NR, cols = std::min(NR, N - n0);
                for (int i = 0; i < count; ++i) {
                    const int m0 = (ip + i) * MR;
                    kernel(pairs, a + std::size_t(i) * a_panel_stride(pairs), bp, C + std::size_t(m0) * ldc + n0, ldc,
                           std::min(MR, M - m0), cols, alpha, beta, b == 0);
                }
            }
        };
        if (rows_outer) {
            for (int ip = mp0; ip < mp1; ip += block)
                for (int b = 0; b < kb.count; ++b) run(b, ip);
        } else {
            for (int b = 0; b < kb.count; ++b)
                for (int ip = mp0; ip < mp1; ip += block) run(b, ip);
        }
    }
}

}  // namespace

bool available() {
    return cpu::has_avx512f() && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && cpu::has_avx512_bf16();
}

void pack_b(bool trans_b, int K, int N, const float* B, int ldb, PackedB& out, int threads) {
    const KBlocks kb = k_blocks(K);
    const int np = panels_of(N);
    out.K = K;
    out.N = N;
    const int last = kb.count - 1;
    out.bits.resize(panel_offset(kb, last, np - 1, K, N) + std::size_t((kb.size(last, K) + 1) / 2) * NR);
    const int tasks = kb.count * np;
#pragma omp parallel for schedule(static) num_threads(std::max(1, threads))
    for (int task = 0; task < tasks; ++task) {
        const int b = task / np, p = task % np;
        pack_b_panel(trans_b, B, ldb, b * kb.kc, kb.size(b, K), p * NR, N,
                     out.bits.data() + panel_offset(kb, b, p, K, N));
    }
}

void gemm(bool trans_a, int M, float alpha, const float* A, int lda, const PackedB& B, float beta, float* C, int ldc,
          int threads) {
    if (M <= 0 || B.N <= 0) return;
    if (B.K <= 0) {  // no products to add: C = beta C
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < B.N; ++j) {
                float& c = C[std::size_t(i) * ldc + j];
                c = beta == 0.0f ? 0.0f : beta * c;
            }
        return;
    }
    multiply(trans_a, M, alpha, A, lda, B, beta, C, ldc, threads);
}

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
          int ldb, float beta, float* C, int ldc, int threads) {
    thread_local PackedB packed;
    if (K > 0 && N > 0) pack_b(trans_b, K, N, B, ldb, packed, threads);
    else packed = PackedB{std::max(K, 0), N, {}};
    gemm(trans_a, M, alpha, A, lda, packed, beta, C, ldc, threads);
}

#else

bool available() { return false; }
void pack_b(bool, int, int, const float*, int, PackedB&, int) {}
void gemm(bool, int, float, const float*, int, const PackedB&, float, float*, int, int) {}
void gemm(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int, int) {}

#endif

}  // namespace ane::bf16
