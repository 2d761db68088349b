#include "ane/device/quant_matvec.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ane/error.hpp"
#include "ane/half.hpp"

#if defined(__x86_64__)
// GCC 12's AVX-512 conversion intrinsics start from _mm512_undefined_*(), which its own
// -Wmaybe-uninitialized then reports inside the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace ane {

namespace {

using ggml::Type;
constexpr int kQK = 32;  // values per Q8_0 / Q4_0 block

inline float finish(float dot, float alpha, float beta, float y) { return beta == 0.0f ? alpha * dot : alpha * dot + beta * y; }

inline float scale_of(const std::uint8_t* block) {
    std::uint16_t h;
    std::memcpy(&h, block, 2);
    return fp16_to_float(h);
}

// ---- portable: a block decoded into floats, then a dot product ----

float dot_portable(Type type, const std::uint8_t* w, const float* x, int K) {
    float dot = 0.0f;
    if (type == Type::Q8_0 || type == Type::Q4_0) {
        const std::size_t block = type == Type::Q8_0 ? 34 : 18;
        for (int b = 0; b < K / kQK; ++b, w += block) {
            float v[kQK], s = 0.0f;
            ggml::dequantize(type, w, v, kQK);
            for (int i = 0; i < kQK; ++i) s += v[i] * x[b * kQK + i];
            dot += s;
        }
        return dot;
    }
    // F16, BF16: 64 values at a time.
    float v[64];
    for (int k = 0; k < K; k += 64) {
        const int n = std::min(64, K - k);
        ggml::dequantize(type, w + 2 * std::size_t(k), v, std::size_t(n));
        for (int i = 0; i < n; ++i) dot += v[i] * x[k + i];
    }
    return dot;
}

#if defined(__x86_64__)

__attribute__((target("avx512f"))) float hsum512(__m512 v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    float s = 0.0f;
    for (float l : lanes) s += l;
    return s;
}

__attribute__((target("avx2,fma"))) float hsum256(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// ---- AVX-512 ----

__attribute__((target("avx512f,f16c"))) float dot_q8_0_avx512(const std::uint8_t* w, const float* x, int K) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const int nb = K / kQK;
    int b = 0;
    for (; b + 2 <= nb; b += 2, w += 68, x += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(w + 34 * 16), _MM_HINT_T0);
        const __m512 d0 = _mm512_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w)));
        const __m512 d1 = _mm512_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w + 34)));
        const __m512 a0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2))));
        const __m512 a1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 18))));
        const __m512 b0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 36))));
        const __m512 b1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 52))));
        const __m512 sa = _mm512_fmadd_ps(a1, _mm512_loadu_ps(x + 16), _mm512_mul_ps(a0, _mm512_loadu_ps(x)));
        const __m512 sb = _mm512_fmadd_ps(b1, _mm512_loadu_ps(x + 48), _mm512_mul_ps(b0, _mm512_loadu_ps(x + 32)));
        acc0 = _mm512_fmadd_ps(d0, sa, acc0);
        acc1 = _mm512_fmadd_ps(d1, sb, acc1);
    }
    for (; b < nb; ++b, w += 34, x += 32) {
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w)));
        const __m512 a0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2))));
        const __m512 a1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 18))));
        acc0 = _mm512_fmadd_ps(d, _mm512_fmadd_ps(a1, _mm512_loadu_ps(x + 16), _mm512_mul_ps(a0, _mm512_loadu_ps(x))), acc0);
    }
    return hsum512(_mm512_add_ps(acc0, acc1));
}

// Q4_0: low nibbles are values 0..15 of a block, high nibbles 16..31, each minus 8.
__attribute__((target("avx512f,f16c"))) __m512 q4_block_avx512(const std::uint8_t* w, const float* x) {
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2)));
    const __m512i eight = _mm512_set1_epi32(8);
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(q, _mm512_set1_epi32(15)), eight));
    const __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight));
    return _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + 16), _mm512_mul_ps(lo, _mm512_loadu_ps(x)));
}

__attribute__((target("avx512f,f16c"))) float dot_q4_0_avx512(const std::uint8_t* w, const float* x, int K) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const int nb = K / kQK;
    int b = 0;
    for (; b + 2 <= nb; b += 2, w += 36, x += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(w + 18 * 32), _MM_HINT_T0);
        const __m512 d0 = _mm512_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w)));
        const __m512 d1 = _mm512_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w + 18)));
        acc0 = _mm512_fmadd_ps(d0, q4_block_avx512(w, x), acc0);
        acc1 = _mm512_fmadd_ps(d1, q4_block_avx512(w + 18, x + 32), acc1);
    }
    for (; b < nb; ++b, w += 18, x += 32)
        acc0 = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w))),
                               q4_block_avx512(w, x), acc0);
    return hsum512(_mm512_add_ps(acc0, acc1));
}

__attribute__((target("avx512f,f16c"))) float dot_f16_avx512(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 512), _MM_HINT_T0);
        acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + k))),
                               _mm512_loadu_ps(x + k), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + k + 16))),
                               _mm512_loadu_ps(x + k + 16), acc1);
    }
    float dot = hsum512(_mm512_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += _cvtsh_ss(h[k]) * x[k];
    return dot;
}

__attribute__((target("avx512f"))) __m512 bf16_to_ps_avx512(const std::uint16_t* h) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h))), 16));
}

__attribute__((target("avx512f"))) float dot_bf16_avx512(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 512), _MM_HINT_T0);
        acc0 = _mm512_fmadd_ps(bf16_to_ps_avx512(h + k), _mm512_loadu_ps(x + k), acc0);
        acc1 = _mm512_fmadd_ps(bf16_to_ps_avx512(h + k + 16), _mm512_loadu_ps(x + k + 16), acc1);
    }
    float dot = hsum512(_mm512_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += bf16_to_float(h[k]) * x[k];
    return dot;
}

// ---- AVX2 + FMA + F16C ----

__attribute__((target("avx2,fma,f16c"))) __m256 i8x8_avx2(const std::uint8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

__attribute__((target("avx2,fma,f16c"))) float dot_q8_0_avx2(const std::uint8_t* w, const float* x, int K) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int b = 0; b < K / kQK; ++b, w += 34, x += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(w + 34 * 8), _MM_HINT_T0);
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w)));
        __m256 s0 = _mm256_mul_ps(i8x8_avx2(w + 2), _mm256_loadu_ps(x));
        __m256 s1 = _mm256_mul_ps(i8x8_avx2(w + 10), _mm256_loadu_ps(x + 8));
        s0 = _mm256_fmadd_ps(i8x8_avx2(w + 18), _mm256_loadu_ps(x + 16), s0);
        s1 = _mm256_fmadd_ps(i8x8_avx2(w + 26), _mm256_loadu_ps(x + 24), s1);
        if (b & 1)
            acc1 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc1);
        else
            acc0 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

__attribute__((target("avx2,fma,f16c"))) float dot_q4_0_avx2(const std::uint8_t* w, const float* x, int K) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i mask = _mm256_set1_epi32(15), eight = _mm256_set1_epi32(8);
    for (int b = 0; b < K / kQK; ++b, w += 18, x += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(w + 18 * 16), _MM_HINT_T0);
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w)));
        const __m256i q0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + 2)));
        const __m256i q1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + 10)));
        auto lo = [&](__m256i q) { return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(q, mask), eight)); };
        auto hi = [&](__m256i q) { return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(q, 4), eight)); };
        __m256 s0 = _mm256_mul_ps(lo(q0), _mm256_loadu_ps(x));
        __m256 s1 = _mm256_mul_ps(lo(q1), _mm256_loadu_ps(x + 8));
        s0 = _mm256_fmadd_ps(hi(q0), _mm256_loadu_ps(x + 16), s0);
        s1 = _mm256_fmadd_ps(hi(q1), _mm256_loadu_ps(x + 24), s1);
        if (b & 1)
            acc1 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc1);
        else
            acc0 = _mm256_fmadd_ps(d, _mm256_add_ps(s0, s1), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

__attribute__((target("avx2,fma,f16c"))) float dot_f16_avx2(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 256), _MM_HINT_T0);
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + k))),
                               _mm256_loadu_ps(x + k), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + k + 8))),
                               _mm256_loadu_ps(x + k + 8), acc1);
    }
    float dot = hsum256(_mm256_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += _cvtsh_ss(h[k]) * x[k];
    return dot;
}

__attribute__((target("avx2,fma"))) __m256 bf16_to_ps_avx2(const std::uint16_t* h) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h))), 16));
}

__attribute__((target("avx2,fma"))) float dot_bf16_avx2(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 256), _MM_HINT_T0);
        acc0 = _mm256_fmadd_ps(bf16_to_ps_avx2(h + k), _mm256_loadu_ps(x + k), acc0);
        acc1 = _mm256_fmadd_ps(bf16_to_ps_avx2(h + k + 8), _mm256_loadu_ps(x + k + 8), acc1);
    }
    float dot = hsum256(_mm256_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += bf16_to_float(h[k]) * x[k];
    return dot;
}

// ---- int8: the vector quantized to Q8_0 blocks once per product, integer dot products ----
// (llama.cpp's scheme: per block, w·x = d_w d_x Σ q_w q_x). |q_w| times q_x with q_w's sign
// makes the unsigned-by-signed byte products the instructions take.

__attribute__((target("avx2,fma,f16c"))) inline __m256 i8_dot_maddubs(__m256i w, __m256i x) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

__attribute__((target("avx2,fma,f16c,avxvnni"))) inline __m256 i8_dot_vnni(__m256i w, __m256i x) {
    return _mm256_cvtepi32_ps(
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)));
}

__attribute__((target("avx2,fma,f16c,avx512vnni,avx512vl"))) inline __m256 i8_dot_vnni512(__m256i w, __m256i x) {
    return _mm256_cvtepi32_ps(
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)));
}

// Q4_0's 32 nibbles as bytes in value order (low nibbles, then high), minus 8.
__attribute__((target("avx2,fma,f16c"))) inline __m256i q4_bytes(const std::uint8_t* q) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(15)), _mm256_set1_epi8(8));
}

template <bool Q4>
__attribute__((target("avx2,fma,f16c"))) inline __m256i block_bytes(const std::uint8_t* blk) {
    return Q4 ? q4_bytes(blk + 2) : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
}

__attribute__((target("avx2,fma,f16c"))) inline __m256 block_scale(const std::uint8_t* blk, float xd) {
    return _mm256_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(blk)) * xd);
}

// The four sums of a row group, as one vector [a0, a1, a2, a3].
__attribute__((target("avx2,fma,f16c"))) inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// Rows of Q8_0 or Q4_0 blocks against the quantized vector, four rows at a time (sharing each
// block of x, one reduction for four rows; a row of a small model has only 9-24 blocks), then
// one at a time. The VNNI variants differ only in the byte product (one vpdpbusd for two
// instructions) and the target they need, which is why the loop is a macro.
#define ANE_I8_ROWS_LOOP(DOT)                                                                                    \
    constexpr int block = Q4 ? 18 : 34;                                                                          \
    int r = 0;                                                                                                   \
    for (; r + 4 <= rows; r += 4) {                                                                              \
        const std::uint8_t* w = W + std::size_t(r) * row_bytes;                                                 \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};   \
        for (int b = 0; b < nb; ++b, w += block) {                                                               \
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * std::size_t(b)));    \
            for (int i = 0; i < 4; ++i) {                                                                        \
                const std::uint8_t* blk = w + std::size_t(i) * row_bytes;                                        \
                if ((b & 3) == 0) _mm_prefetch(reinterpret_cast<const char*>(blk + 8 * block), _MM_HINT_T0);     \
                acc[i] = _mm256_fmadd_ps(block_scale(blk, xd[b]), DOT(block_bytes<Q4>(blk), x), acc[i]);         \
            }                                                                                                    \
        }                                                                                                        \
        _mm_storeu_ps(out + r, hsum4(acc[0], acc[1], acc[2], acc[3]));                                          \
    }                                                                                                            \
    for (; r < rows; ++r) {                                                                                      \
        const std::uint8_t* w = W + std::size_t(r) * row_bytes;                                                 \
        __m256 acc = _mm256_setzero_ps();                                                                        \
        for (int b = 0; b < nb; ++b, w += block) {                                                               \
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * std::size_t(b)));    \
            acc = _mm256_fmadd_ps(block_scale(w, xd[b]), DOT(block_bytes<Q4>(w), x), acc);                       \
        }                                                                                                        \
        out[r] = hsum256(acc);                                                                                   \
    }

// out[r] = row r of W (rows of row_bytes) · x, for r < rows.
template <bool Q4>
__attribute__((target("avx2,fma,f16c"))) void rows_i8_avx2(const std::uint8_t* W, std::size_t row_bytes, int rows,
                                                            const std::int8_t* xq, const float* xd, int nb, float* out) {
    ANE_I8_ROWS_LOOP(i8_dot_maddubs)
}

template <bool Q4>
__attribute__((target("avx2,fma,f16c,avxvnni"))) void rows_i8_vnni(const std::uint8_t* W, std::size_t row_bytes,
                                                                    int rows, const std::int8_t* xq, const float* xd,
                                                                    int nb, float* out) {
    ANE_I8_ROWS_LOOP(i8_dot_vnni)
}

template <bool Q4>
__attribute__((target("avx2,fma,f16c,avx512vnni,avx512vl"))) void rows_i8_vnni512(const std::uint8_t* W,
                                                                                  std::size_t row_bytes, int rows,
                                                                                  const std::int8_t* xq,
                                                                                  const float* xd, int nb, float* out) {
    ANE_I8_ROWS_LOOP(i8_dot_vnni512)
}
#undef ANE_I8_ROWS_LOOP

// Groups of 8 rows in the rows8 layout: lane j of every vector is row j, so a block's four-byte
// runs of x are broadcast and the quants multiply as loaded. The quants are unsigned (Q4_0's
// nibbles 0..15, Q8_0's q + 128): the offset times the block's sum of x is taken back at the
// start. Two sums per block halve the chain of dependent dot products.
#define ANE_ROWS8_LOOP(DPBUSD)                                                                                   \
    constexpr std::size_t qb = Q4 ? 16 : 32, gbb = 8 * (qb + 2);                                                 \
    constexpr int offset = Q4 ? 8 : 128;                                                                         \
    const __m256i low4 = _mm256_set1_epi8(15);                                                                   \
    for (int g = 0; g < groups; ++g) {                                                                           \
        const std::uint8_t* blk = W + std::size_t(g) * nb * gbb;                                                 \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                                           \
        for (int b = 0; b < nb; ++b, blk += gbb) {                                                               \
            _mm_prefetch(reinterpret_cast<const char*>(blk + 4 * gbb), _MM_HINT_T0);                             \
            _mm_prefetch(reinterpret_cast<const char*>(blk + 4 * gbb + 64), _MM_HINT_T0);                        \
            const std::int8_t* x = xq + 32 * std::size_t(b);                                                     \
            auto run = [&](int c) {                                                                              \
                std::int32_t v;                                                                                  \
                std::memcpy(&v, x + 4 * c, 4);                                                                   \
                return _mm256_set1_epi32(v);                                                                     \
            };                                                                                                   \
            auto quants = [&](int c) {                                                                           \
                return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * std::size_t(c)));     \
            };                                                                                                   \
            __m256i s0 = _mm256_set1_epi32(-offset * sx[b]), s1 = _mm256_setzero_si256();                        \
            if (Q4) {                                                                                            \
                for (int c = 0; c < 4; ++c) {                                                                    \
                    const __m256i v = quants(c);                                                                 \
                    s0 = DPBUSD(s0, _mm256_and_si256(v, low4), run(c));                                          \
                    s1 = DPBUSD(s1, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), run(c + 4));                \
                }                                                                                                \
            } else {                                                                                             \
                for (int c = 0; c < 8; c += 2) {                                                                 \
                    s0 = DPBUSD(s0, quants(c), run(c));                                                          \
                    s1 = DPBUSD(s1, quants(c + 1), run(c + 1));                                                  \
                }                                                                                                \
            }                                                                                                    \
            const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))), \
                                               _mm256_set1_ps(xd[b]));                                           \
            const __m256 dot = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));                                     \
            if (b & 1)                                                                                           \
                acc1 = _mm256_fmadd_ps(scale, dot, acc1);                                                        \
            else                                                                                                 \
                acc0 = _mm256_fmadd_ps(scale, dot, acc0);                                                        \
        }                                                                                                        \
        _mm256_storeu_ps(out + 8 * std::size_t(g), _mm256_add_ps(acc0, acc1));                                   \
    }

// out[8g + j] = row 8g + j · x for g < groups; W at the first group's bytes.
template <bool Q4>
__attribute__((target("avx2,fma,f16c,avxvnni"))) void rows8_vnni(const std::uint8_t* W, int groups,
                                                                  const std::int8_t* xq, const float* xd,
                                                                  const std::int32_t* sx, int nb, float* out) {
    ANE_ROWS8_LOOP(_mm256_dpbusd_avx_epi32)
}

template <bool Q4>
__attribute__((target("avx2,fma,f16c,avx512vnni,avx512vl"))) void rows8_vnni512(const std::uint8_t* W, int groups,
                                                                                const std::int8_t* xq,
                                                                                const float* xd,
                                                                                const std::int32_t* sx, int nb,
                                                                                float* out) {
    ANE_ROWS8_LOOP(_mm256_dpbusd_epi32)
}
#undef ANE_ROWS8_LOOP

// Several tokens against groups of 8 rows (a prompt): each block's quants are loaded and
// unpacked once and serve T tokens, whose sums stay in registers.
struct TokenBlocks {
    const std::int8_t* q;
    const float* d;
    const std::int32_t* sum;
};

#define ANE_ROWS8_TOKENS_LOOP(DPBUSD)                                                                            \
    constexpr std::size_t qb = Q4 ? 16 : 32, gbb = 8 * (qb + 2);                                                 \
    constexpr int offset = Q4 ? 8 : 128;                                                                         \
    const __m256i low4 = _mm256_set1_epi8(15);                                                                   \
    for (int g = 0; g < groups; ++g) {                                                                           \
        const std::uint8_t* blk = W + std::size_t(g) * nb * gbb;                                                 \
        __m256 acc[T];                                                                                           \
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();                                                \
        for (int b = 0; b < nb; ++b, blk += gbb) {                                                               \
            __m256i w[8];                                                                                        \
            for (int c = 0; c < int(qb / 4); ++c) {                                                              \
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * std::size_t(c))); \
                if (Q4) {                                                                                        \
                    w[c] = _mm256_and_si256(v, low4);                                                            \
                    w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);                                  \
                } else {                                                                                         \
                    w[c] = v;                                                                                    \
                }                                                                                                \
            }                                                                                                    \
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));          \
            for (int t = 0; t < T; ++t) {                                                                        \
                const std::int8_t* x = tok[t].q + 32 * std::size_t(b);                                           \
                __m256i s0 = _mm256_set1_epi32(-offset * tok[t].sum[b]), s1 = _mm256_setzero_si256();            \
                for (int c = 0; c < 8; c += 2) {                                                                 \
                    std::int32_t v0, v1;                                                                         \
                    std::memcpy(&v0, x + 4 * c, 4);                                                              \
                    std::memcpy(&v1, x + 4 * c + 4, 4);                                                          \
                    s0 = DPBUSD(s0, w[c], _mm256_set1_epi32(v0));                                                \
                    s1 = DPBUSD(s1, w[c + 1], _mm256_set1_epi32(v1));                                            \
                }                                                                                                \
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(tok[t].d[b])),                         \
                                         _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc[t]);                   \
            }                                                                                                    \
        }                                                                                                        \
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + std::size_t(t) * ldo + 8 * std::size_t(g), acc[t]);  \
    }

// out[t * ldo + 8g + j] = row 8g + j · token t, for g < groups and t < T.
template <bool Q4, int T>
__attribute__((target("avx2,fma,f16c,avxvnni"))) void rows8_tokens_vnni(const std::uint8_t* W, int groups,
                                                                         const TokenBlocks* tok, int nb, float* out,
                                                                         std::size_t ldo) {
    ANE_ROWS8_TOKENS_LOOP(_mm256_dpbusd_avx_epi32)
}

template <bool Q4, int T>
__attribute__((target("avx2,fma,f16c,avx512vnni,avx512vl"))) void rows8_tokens_vnni512(
    const std::uint8_t* W, int groups, const TokenBlocks* tok, int nb, float* out, std::size_t ldo) {
    ANE_ROWS8_TOKENS_LOOP(_mm256_dpbusd_epi32)
}
#undef ANE_ROWS8_TOKENS_LOOP

#endif

using RowDot = float (*)(const std::uint8_t*, const float*, int);

RowDot row_dot(MatvecIsa isa, Type type) {
#if defined(__x86_64__)
    if (isa == MatvecIsa::avx512) switch (type) {
            case Type::Q8_0: return dot_q8_0_avx512;
            case Type::Q4_0: return dot_q4_0_avx512;
            case Type::F16: return dot_f16_avx512;
            case Type::BF16: return dot_bf16_avx512;
            default: break;
        }
    if (isa == MatvecIsa::avx2) switch (type) {
            case Type::Q8_0: return dot_q8_0_avx2;
            case Type::Q4_0: return dot_q4_0_avx2;
            case Type::F16: return dot_f16_avx2;
            case Type::BF16: return dot_bf16_avx2;
            default: break;
        }
#endif
    (void)isa;
    (void)type;
    return nullptr;
}


using I8Rows = void (*)(const std::uint8_t*, std::size_t, int, const std::int8_t*, const float*, int, float*);

I8Rows i8_rows(Int8Dot kind, bool q4) {
#if defined(__x86_64__)
    switch (kind) {
        case Int8Dot::avx2: return q4 ? rows_i8_avx2<true> : rows_i8_avx2<false>;
        case Int8Dot::avx_vnni: return q4 ? rows_i8_vnni<true> : rows_i8_vnni<false>;
        case Int8Dot::avx512_vnni: return q4 ? rows_i8_vnni512<true> : rows_i8_vnni512<false>;
        case Int8Dot::none: break;
    }
#endif
    (void)kind;
    (void)q4;
    return nullptr;
}

bool int8_type(Type t) { return t == Type::Q8_0 || t == Type::Q4_0; }

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void quantize_vector_avx2(const float* x, int K, std::int8_t* q, float* d) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the per-lane packs
    for (int b = 0; b < K / kQK; ++b) {
        const float* xb = x + std::size_t(b) * kQK;
        const __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
                     v3 = _mm256_loadu_ps(xb + 24);
        const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                       _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        const float amax = _mm_cvtss_f32(_mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1)));
        d[b] = amax / 127.0f;
        const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
        // Nearest even, as lrintf in the portable version.
        const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, id)),
                      i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, id));
        const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + std::size_t(b) * kQK),
                            _mm256_permutevar8x32_epi32(bytes, order));
    }
}
#endif

// The vector as Q8_0 blocks with float scales: d = max|x| / 127, q = round(x / d).
void quantize_vector(const float* x, int K, std::int8_t* q, float* d) {
#if defined(__x86_64__)
    if (best_matvec_isa() != MatvecIsa::portable) return quantize_vector_avx2(x, K, q, d);
#endif
    for (int b = 0; b < K / kQK; ++b) {
        float amax = 0.0f;
        for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(x[b * kQK + i]));
        d[b] = amax / 127.0f;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (int i = 0; i < kQK; ++i) q[b * kQK + i] = static_cast<std::int8_t>(std::lrintf(x[b * kQK + i] * id));
    }
}

struct QuantizedVector {
    std::vector<std::int8_t> q;
    std::vector<float> d;
    std::vector<std::int32_t> sum;  // of each block's q (the rows8 kernels' offset)
    void set(const float* x, int K) {
        q.resize(std::size_t(K));
        d.resize(std::size_t(K / kQK));
        sum.assign(std::size_t(K / kQK), 0);
        quantize_vector(x, K, q.data(), d.data());
        for (int i = 0; i < K; ++i) sum[std::size_t(i / kQK)] += q[std::size_t(i)];
    }
};

using Rows8 = void (*)(const std::uint8_t*, int, const std::int8_t*, const float*, const std::int32_t*, int, float*);

Rows8 rows8_kernel(Int8Dot kind, bool q4) {
#if defined(__x86_64__)
    if (kind == Int8Dot::avx_vnni) return q4 ? rows8_vnni<true> : rows8_vnni<false>;
    if (kind == Int8Dot::avx512_vnni) return q4 ? rows8_vnni512<true> : rows8_vnni512<false>;
#endif
    (void)kind;
    (void)q4;
    return nullptr;
}

using Rows8Tokens = void (*)(const std::uint8_t*, int, const TokenBlocks*, int, float*, std::size_t);

template <bool Q4>
Rows8Tokens rows8_tokens_for(Int8Dot kind, int T) {
#if defined(__x86_64__)
    static constexpr Rows8Tokens vnni[4] = {rows8_tokens_vnni<Q4, 1>, rows8_tokens_vnni<Q4, 2>,
                                            rows8_tokens_vnni<Q4, 3>, rows8_tokens_vnni<Q4, 4>};
    static constexpr Rows8Tokens vnni512[4] = {rows8_tokens_vnni512<Q4, 1>, rows8_tokens_vnni512<Q4, 2>,
                                               rows8_tokens_vnni512<Q4, 3>, rows8_tokens_vnni512<Q4, 4>};
    if (kind == Int8Dot::avx_vnni) return vnni[T - 1];
    if (kind == Int8Dot::avx512_vnni) return vnni512[T - 1];
#endif
    (void)kind;
    (void)T;
    return nullptr;
}

void rows_int8(Int8Dot kind, const QuantMatrix& W, const QuantizedVector& xv, int r0, int r1, float* y, float alpha,
               float beta) {
    float dots[64];
    if (W.layout() == QuantMatrix::Layout::rows8) {  // r0, r1 are multiples of 8 (for_row_chunks)
        const Rows8 rows8 = rows8_kernel(kind, W.type() == Type::Q4_0);
        for (int r = r0; r < r1; r += 64) {
            const int n = std::min(64, r1 - r);
            rows8(W.group(r / 8), n / 8, xv.q.data(), xv.d.data(), xv.sum.data(), W.cols() / kQK, dots);
            for (int i = 0; i < n; ++i) y[r + i] = finish(dots[i], alpha, beta, y[r + i]);
        }
        return;
    }
    const I8Rows rows = i8_rows(kind, W.type() == Type::Q4_0);
    for (int r = r0; r < r1; r += 64) {
        const int n = std::min(64, r1 - r);
        rows(W.row(r), W.row_bytes(), n, xv.q.data(), xv.d.data(), W.cols() / kQK, dots);
        for (int i = 0; i < n; ++i) y[r + i] = finish(dots[i], alpha, beta, y[r + i]);
    }
}

}  // namespace

Int8Dot best_int8_dot() {
#if defined(__x86_64__)
    static const Int8Dot kind = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                                  __builtin_cpu_supports("f16c"))
                                    ? Int8Dot::none
                                : __builtin_cpu_supports("avxvnni") ? Int8Dot::avx_vnni
                                : __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")
                                    ? Int8Dot::avx512_vnni
                                    : Int8Dot::avx2;
    return kind;
#else
    return Int8Dot::none;
#endif
}

const char* int8_dot_name(Int8Dot kind) {
    switch (kind) {
        case Int8Dot::none: return "none";
        case Int8Dot::avx2: return "AVX2";
        case Int8Dot::avx_vnni: return "AVX-VNNI";
        case Int8Dot::avx512_vnni: return "AVX512-VNNI";
    }
    return "?";
}

void quant_vector_round_trip(const float* x, int K, float* out) {
    QuantizedVector v;
    v.set(x, K);
    for (int i = 0; i < K; ++i) out[i] = float(v.q[std::size_t(i)]) * v.d[std::size_t(i / kQK)];
}

void quant_matvec_rows(MatvecIsa isa, const QuantMatrix& W, const float* x, int r0, int r1, float* y, float alpha,
                       float beta, Int8Dot int8) {
    const Type type = W.type();
    const int K = W.cols();
    const bool rows8 = W.layout() == QuantMatrix::Layout::rows8;
    if (int8 != Int8Dot::none && int8_type(type) && (!rows8 || rows8_kernel(int8, type == Type::Q4_0))) {
        require(!rows8 || (r0 % 8 == 0 && (r1 % 8 == 0 || r1 == W.rows())), "rows8: rows in groups of 8");
        thread_local QuantizedVector xv;
        xv.set(x, K);
        return rows_int8(int8, W, xv, r0, r1, y, alpha, beta);
    }
    if (rows8) {  // no kernel for this layout: row by row, decoded
        thread_local std::vector<float> row;
        row.resize(std::size_t(K));
        for (int r = r0; r < r1; ++r) {
            W.decode_rows(r, r + 1, row.data());
            matvec_rows(isa, row.data(), x, K, 0, 1, y + r, alpha, beta);
        }
        return;
    }
    if (type == Type::F32) return matvec_rows(isa, W.f32(), x, K, r0, r1, y, alpha, beta);
    if (const RowDot dot = row_dot(isa, type)) {
        for (int r = r0; r < r1; ++r) y[r] = finish(dot(W.row(r), x, K), alpha, beta, y[r]);
        return;
    }
    if (type == Type::Q8_0 || type == Type::Q4_0 || type == Type::F16 || type == Type::BF16) {
        for (int r = r0; r < r1; ++r) y[r] = finish(dot_portable(type, W.row(r), x, K), alpha, beta, y[r]);
        return;
    }
    // K-quants: one row decoded at a time (a few KB, in L1), then the float32 kernel.
    thread_local std::vector<float> row;
    row.resize(std::size_t(K));
    for (int r = r0; r < r1; ++r) {
        W.decode_rows(r, r + 1, row.data());
        matvec_rows(isa, row.data(), x, K, 0, 1, y + r, alpha, beta);
    }
}

bool quant_matmul_int8(SpinPool& pool, const QuantMatrix& W, const float* X, int M, float* Y, float alpha,
                       float beta) {
    const Int8Dot kind = best_int8_dot();
    const bool q4 = W.type() == Type::Q4_0;
    const bool rows8 = W.layout() == QuantMatrix::Layout::rows8;
    if (kind == Int8Dot::none || !int8_type(W.type()) ||
        (rows8 && !(q4 ? rows8_tokens_for<true>(kind, 1) : rows8_tokens_for<false>(kind, 1))))
        return false;
    const int N = W.rows(), K = W.cols(), nb = K / kQK;
    thread_local std::vector<QuantizedVector> scratch;
    std::vector<QuantizedVector>& tokens = scratch;  // a lambda does not capture a thread_local
    if (tokens.size() < std::size_t(M)) tokens.resize(std::size_t(M));
    std::vector<TokenBlocks> blocks(static_cast<std::size_t>(M));
    std::atomic<int> next{0};
    pool.share([&] {
        for (int m = next.fetch_add(1); m < M; m = next.fetch_add(1)) tokens[std::size_t(m)].set(X + std::size_t(m) * K, K);
    });
    for (int m = 0; m < M; ++m)
        blocks[std::size_t(m)] = {tokens[std::size_t(m)].q.data(), tokens[std::size_t(m)].d.data(),
                                  tokens[std::size_t(m)].sum.data()};
    if (!rows8) {  // the ggml layout: token by token on the one-token kernels
        for_row_chunks(pool, N, W.row_bytes() * std::size_t(M), [&](int r0, int r1) {
            for (int m = 0; m < M; ++m)
                rows_int8(kind, W, tokens[std::size_t(m)], r0, r1, Y + std::size_t(m) * N, alpha, beta);
        });
        return true;
    }
    constexpr int kTokens = 4;  // per pass over a chunk of rows (its weights stay in L2)
    for_row_chunks(
        pool, N, W.row_bytes() * std::size_t(M),
        [&](int r0, int r1) {
            thread_local std::vector<float> out;
            out.resize(std::size_t(kTokens) * (r1 - r0));
            for (int t0 = 0; t0 < M; t0 += kTokens) {
                const int T = std::min(kTokens, M - t0);
                const Rows8Tokens kernel = q4 ? rows8_tokens_for<true>(kind, T) : rows8_tokens_for<false>(kind, T);
                kernel(W.group(r0 / 8), (r1 - r0) / 8, blocks.data() + t0, nb, out.data(), std::size_t(r1 - r0));
                for (int t = 0; t < T; ++t)
                    for (int i = 0; i < r1 - r0; ++i) {
                        float& y = Y[std::size_t(t0 + t) * N + r0 + i];
                        y = finish(out[std::size_t(t) * (r1 - r0) + i], alpha, beta, y);
                    }
            }
        },
        8);
    return true;
}

void quant_matvec(SpinPool& pool, const QuantMatrix& W, const float* x, float* y, float alpha, float beta) {
    const MatvecIsa isa = best_matvec_isa();
    if (const Int8Dot int8 = best_int8_dot(); int8 != Int8Dot::none && int8_type(W.type())) {
        thread_local QuantizedVector scratch;
        // A named local: a lambda does not capture a thread_local, and a worker would see its own.
        QuantizedVector& xv = scratch;  // quantized once per product, read by every thread
        xv.set(x, W.cols());
        const bool rows8 = W.layout() == QuantMatrix::Layout::rows8;
        for_row_chunks(pool, W.rows(), W.row_bytes(),
                       [&](int r0, int r1) { rows_int8(int8, W, xv, r0, r1, y, alpha, beta); }, rows8 ? 8 : 2);
        return;
    }
    for_row_chunks(pool, W.rows(), W.row_bytes(),
                   [&](int r0, int r1) { quant_matvec_rows(isa, W, x, r0, r1, y, alpha, beta); });
}

}  // namespace ane
