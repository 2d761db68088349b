#include "int8_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "simd_sums.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ane::int8 {

namespace {

#if defined(__x86_64__)
using simd::hsum256;
#endif

constexpr int kQK = kBlock;

#if defined(__x86_64__)

// The ggml layout: |q_w| times q_x with q_w's sign makes the unsigned-by-signed byte products
// the instructions take.

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

// 32 nibbles (16 bytes) as bytes in value order: low nibbles, then high.
__attribute__((target("avx2,fma,f16c"))) inline __m256i nibble_bytes(const std::uint8_t* q) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(15));
}

// Bit i of the little-endian word at qh as 16 or 0 in byte i (the fifth bits of Q5_0/Q5_1).
__attribute__((target("avx2,fma,f16c"))) inline __m256i fifth_bits(const std::uint8_t* qh_bytes) {
    std::uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);
    // Byte i takes byte i / 8 of qh (values 0-15 in the low lane, 16-31 in the high one), then
    // its bit i % 8.
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(std::int32_t(qh)),
                                               _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                                                2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
    const __m256i bit = _mm256_set1_epi64x(std::int64_t(0x8040201008040201ull));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

// The block formats of the ggml layout, each starting with its fp16 scale d: Q8_0 (34 bytes:
// d, int8 q[32]), Q4_0 (18: d, nibbles; minus 8), Q5_0 (22: d, fifth bits, nibbles; minus 16),
// Q4_1 (20: d, fp16 min m, nibbles) and Q5_1 (24: d, m, fifth bits, nibbles). A value is
// d·q (+ m for the _1 types), so a block's dot product is d·d_x·Σ q·q_x (+ m·d_x·Σ q_x).
template <ggml::Type kType>
constexpr int block_size = kType == ggml::Type::Q8_0   ? 34
                           : kType == ggml::Type::Q4_0 ? 18
                           : kType == ggml::Type::Q5_0 ? 22
                           : kType == ggml::Type::Q4_1 ? 20
                                                       : 24;

template <ggml::Type kType>
constexpr bool has_min = kType == ggml::Type::Q4_1 || kType == ggml::Type::Q5_1;

// A block's 32 values q as bytes (signed, or 0..31 for the _1 types).
template <ggml::Type kType>
__attribute__((target("avx2,fma,f16c"))) inline __m256i block_bytes(const std::uint8_t* blk) {
    using ggml::Type;
    if constexpr (kType == Type::Q8_0) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    if constexpr (kType == Type::Q4_0) return _mm256_sub_epi8(nibble_bytes(blk + 2), _mm256_set1_epi8(8));
    if constexpr (kType == Type::Q5_0)
        return _mm256_sub_epi8(_mm256_or_si256(nibble_bytes(blk + 6), fifth_bits(blk + 2)), _mm256_set1_epi8(16));
    if constexpr (kType == Type::Q4_1) return nibble_bytes(blk + 4);
    return _mm256_or_si256(nibble_bytes(blk + 8), fifth_bits(blk + 4));
}

// A block's 32 values as unsigned bytes, for the VNNI products: q + unsigned_offset (Q8_0's
// q + 128, Q4_0's and Q5_0's stored nibbles as they are, the _1 types' q).
template <ggml::Type kType>
constexpr int unsigned_offset = kType == ggml::Type::Q8_0   ? 128
                                : kType == ggml::Type::Q4_0 ? 8
                                : kType == ggml::Type::Q5_0 ? 16
                                                            : 0;

template <ggml::Type kType>
__attribute__((target("avx2,fma,f16c"))) inline __m256i block_ubytes(const std::uint8_t* blk) {
    using ggml::Type;
    if constexpr (kType == Type::Q8_0)
        return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2)),
                                _mm256_set1_epi8(char(0x80)));
    if constexpr (kType == Type::Q4_0) return nibble_bytes(blk + 2);
    if constexpr (kType == Type::Q5_0) return _mm256_or_si256(nibble_bytes(blk + 6), fifth_bits(blk + 2));
    return block_bytes<kType>(blk);  // the _1 types: already unsigned
}

// m·d_x·Σ q_x of a _1 block (nothing for the others).
template <ggml::Type kType>
__attribute__((target("avx2,fma,f16c"))) inline float block_min(const std::uint8_t* blk, float xd, std::int32_t xs) {
    if constexpr (has_min<kType>)
        return _cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(blk + 2)) * xd * float(xs);
    return 0.0f;
}

__attribute__((target("avx2,fma,f16c"))) inline __m256 block_scale(const std::uint8_t* blk, float xd) {
    return _mm256_set1_ps(_cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(blk)) * xd);
}

// The four sums of a row group, as one vector [a0, a1, a2, a3].
__attribute__((target("avx2,fma,f16c"))) inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// How far ahead the row loops ask for their bytes: every line of each block 4 KB ahead
// (stories110M decode, 1 thread, rows8 Q8_0 / Q4_0: two lines 1 KB ahead, as before, 92 / 146
// tok/s; every line 1 KB ahead 98 / 225; 2 KB 104 / 213; 4 KB 109 / 268; 8 KB 98 / 263. The
// ggml layout, Q5_0: one line 272 bytes ahead every fourth block 67, every block 4 KB 103).
constexpr std::size_t kPrefetchAhead = 4096;

// Rows of Q8_0, Q4_0, Q5_0, Q4_1 or Q5_1 blocks against the quantized vector, four rows at a
// time when FOUR_ROWS (sharing each block of x, one reduction for four rows; a row of a small
// model has only 9-24 blocks), then one at a time. The VNNI variants differ only in the byte
// product (one vpdpbusd for two instructions) and the target they need, which is why the loop
// is a macro.
#define ANE_I8_ROWS_LOOP(DOT, FOUR_ROWS)                                                                             \
    constexpr int block = block_size<kType>;                                                                         \
    int r = 0;                                                                                                       \
    for (; (FOUR_ROWS) && r + 4 <= rows; r += 4) {                                                                   \
        const std::uint8_t* w = W + std::size_t(r) * row_bytes;                                                      \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};        \
        float mins[4] = {0.0f, 0.0f, 0.0f, 0.0f};                                                                    \
        for (int b = 0; b < nb; ++b, w += block) {                                                                   \
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * std::size_t(b)));        \
            for (int i = 0; i < 4; ++i) {                                                                            \
                const std::uint8_t* blk = w + std::size_t(i) * row_bytes;                                            \
                _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetchAhead), _MM_HINT_T0);                      \
                acc[i] = _mm256_fmadd_ps(block_scale(blk, xd[b]), DOT(block_bytes<kType>(blk), x), acc[i]);          \
                if constexpr (has_min<kType>) mins[i] += block_min<kType>(blk, xd[b], xs[b]);                        \
            }                                                                                                        \
        }                                                                                                            \
        _mm_storeu_ps(out + r, _mm_add_ps(hsum4(acc[0], acc[1], acc[2], acc[3]), _mm_loadu_ps(mins)));               \
    }                                                                                                                \
    for (; r < rows; ++r) {                                                                                          \
        const std::uint8_t* w = W + std::size_t(r) * row_bytes;                                                      \
        __m256 acc = _mm256_setzero_ps();                                                                            \
        float mins = 0.0f;                                                                                           \
        for (int b = 0; b < nb; ++b, w += block) {                                                                   \
            const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32 * std::size_t(b)));        \
            _mm_prefetch(reinterpret_cast<const char*>(w + kPrefetchAhead), _MM_HINT_T0);                            \
            acc = _mm256_fmadd_ps(block_scale(w, xd[b]), DOT(block_bytes<kType>(w), x), acc);                        \
            if constexpr (has_min<kType>) mins += block_min<kType>(w, xd[b], xs[b]);                                 \
        }                                                                                                            \
        out[r] = hsum256(acc) + mins;                                                                                \
    }

// out[r] = row r of W (rows of row_bytes) · x, for r < rows.
template <ggml::Type kType>
__attribute__((target("avx2,fma,f16c"))) void rows_i8_avx2(const std::uint8_t* W, std::size_t row_bytes, int rows,
                                                            const std::int8_t* xq, const float* xd,
                                                            const std::int32_t* xs, int nb, float* out) {
    // Q8_0 one row at a time: on a Zen 3 (AVX2, no VNNI) the four rows' streams gave stories110M
    // Q8_0 decode 31-33 tok/s at 1 thread and 32-39 at 2, one row with its blocks asked for 4 KB
    // ahead 41-56 and 54-55 (interleaved runs); Q4_0 was no faster that way (47-54 against 56-60).
    ANE_I8_ROWS_LOOP(i8_dot_maddubs, kType != ggml::Type::Q8_0)
}

template <ggml::Type kType>
__attribute__((target("avx2,fma,f16c,avxvnni"))) void rows_i8_vnni(const std::uint8_t* W, std::size_t row_bytes,
                                                                    int rows, const std::int8_t* xq, const float* xd,
                                                                    const std::int32_t* xs, int nb, float* out) {
    ANE_I8_ROWS_LOOP(i8_dot_vnni, true)
}

template <ggml::Type kType>
__attribute__((target("avx2,fma,f16c,avx512vnni,avx512vl"))) void rows_i8_vnni512(const std::uint8_t* W,
                                                                                  std::size_t row_bytes, int rows,
                                                                                  const std::int8_t* xq,
                                                                                  const float* xd,
                                                                                  const std::int32_t* xs, int nb,
                                                                                  float* out) {
    ANE_I8_ROWS_LOOP(i8_dot_vnni512, true)
}
#undef ANE_I8_ROWS_LOOP

// The ggml layout against T (1..4) tokens: each block of a row unpacked once for all of them
// (a prompt's tokens; rows8 has its own).
#define ANE_I8_TOKENS_LOOP(DOT)                                                                                      \
    constexpr int block = block_size<kType>;                                                                         \
    for (int r = 0; r < rows; ++r) {                                                                                 \
        const std::uint8_t* w = W + std::size_t(r) * row_bytes;                                                      \
        __m256 acc[T];                                                                                               \
        float mins[T];                                                                                               \
        for (int t = 0; t < T; ++t) {                                                                                \
            acc[t] = _mm256_setzero_ps();                                                                            \
            mins[t] = 0.0f;                                                                                          \
        }                                                                                                            \
        for (int b = 0; b < nb; ++b, w += block) {                                                                   \
            const __m256i q = block_bytes<kType>(w);                                                                 \
            for (int t = 0; t < T; ++t) {                                                                            \
                const auto* xq = reinterpret_cast<const __m256i*>(tokens[t].q + 32 * std::size_t(b));               \
                acc[t] = _mm256_fmadd_ps(block_scale(w, tokens[t].d[b]), DOT(q, _mm256_loadu_si256(xq)), acc[t]);    \
                if constexpr (has_min<kType>) mins[t] += block_min<kType>(w, tokens[t].d[b], tokens[t].sum[b]);     \
            }                                                                                                        \
        }                                                                                                            \
        for (int t = 0; t < T; ++t) out[std::size_t(t) * ldo + std::size_t(r)] = hsum256(acc[t]) + mins[t];          \
    }

template <ggml::Type kType, int T>
__attribute__((target("avx2,fma,f16c"))) void tokens_i8_avx2(const std::uint8_t* W, std::size_t row_bytes, int rows,
                                                              const TokenBlocks* tokens, int nb, float* out,
                                                              std::size_t ldo) {
    ANE_I8_TOKENS_LOOP(i8_dot_maddubs)
}

#undef ANE_I8_TOKENS_LOOP

// With VNNI the quants multiply unsigned, as stored (no sign tricks per token): a block's dot
// is d·d_x·(Σ u·q_x − offset·Σ q_x), the offset term started in the integer sum's first lane,
// or d·d_x·Σ u·q_x + m·d_x·Σ q_x for the _1 types. Four tokens' sums end in one reduction.
#define ANE_I8_TOKENS_LOOP_UNSIGNED(DPBUSD)                                                                          \
    constexpr int block = block_size<kType>;                                                                         \
    for (int r = 0; r < rows; ++r) {                                                                                 \
        const std::uint8_t* w = W + std::size_t(r) * row_bytes;                                                      \
        __m256 acc[T];                                                                                               \
        float mins[T];                                                                                               \
        for (int t = 0; t < T; ++t) {                                                                                \
            acc[t] = _mm256_setzero_ps();                                                                            \
            mins[t] = 0.0f;                                                                                          \
        }                                                                                                            \
        for (int b = 0; b < nb; ++b, w += block) {                                                                   \
            const __m256i u = block_ubytes<kType>(w);                                                                \
            const float d = _cvtsh_ss(*reinterpret_cast<const std::uint16_t*>(w));                                   \
            for (int t = 0; t < T; ++t) {                                                                            \
                const float dx = tokens[t].d[b];                                                                     \
                const auto* xq = reinterpret_cast<const __m256i*>(tokens[t].q + 32 * std::size_t(b));               \
                const int offset_sum = -unsigned_offset<kType> * tokens[t].sum[b];                                   \
                const __m256i start = _mm256_setr_epi32(offset_sum, 0, 0, 0, 0, 0, 0, 0);                            \
                const __m256i p = DPBUSD(start, u, _mm256_loadu_si256(xq));                                          \
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(p), acc[t]);                     \
                if constexpr (has_min<kType>) mins[t] += block_min<kType>(w, dx, tokens[t].sum[b]);                 \
            }                                                                                                        \
        }                                                                                                            \
        int t = 0;                                                                                                   \
        for (; t + 4 <= T; t += 4) {                                                                                 \
            float sums[4];                                                                                           \
            _mm_storeu_ps(sums, _mm_add_ps(hsum4(acc[t], acc[t + 1], acc[t + 2], acc[t + 3]), _mm_loadu_ps(mins + t))); \
            for (int i = 0; i < 4; ++i) out[std::size_t(t + i) * ldo + std::size_t(r)] = sums[i];                   \
        }                                                                                                            \
        for (; t < T; ++t) out[std::size_t(t) * ldo + std::size_t(r)] = hsum256(acc[t]) + mins[t];                   \
    }

template <ggml::Type kType, int T>
__attribute__((target("avx2,fma,f16c,avxvnni"))) void tokens_i8_vnni(const std::uint8_t* W, std::size_t row_bytes,
                                                                      int rows, const TokenBlocks* tokens, int nb,
                                                                      float* out, std::size_t ldo) {
    ANE_I8_TOKENS_LOOP_UNSIGNED(_mm256_dpbusd_avx_epi32)
}

template <ggml::Type kType, int T>
__attribute__((target("avx2,fma,f16c,avx512vnni,avx512vl"))) void tokens_i8_vnni512(const std::uint8_t* W,
                                                                                    std::size_t row_bytes, int rows,
                                                                                    const TokenBlocks* tokens, int nb,
                                                                                    float* out, std::size_t ldo) {
    ANE_I8_TOKENS_LOOP_UNSIGNED(_mm256_dpbusd_epi32)
}
#undef ANE_I8_TOKENS_LOOP_UNSIGNED

template <ggml::Type kType>
RowsTokens tokens_for(Int8Dot kind, int T) {  // T in 1..max_tokens(kind), checked by the caller
    static constexpr RowsTokens avx2[4] = {tokens_i8_avx2<kType, 1>, tokens_i8_avx2<kType, 2>,
                                           tokens_i8_avx2<kType, 3>, tokens_i8_avx2<kType, 4>};
    static constexpr RowsTokens vnni[8] = {tokens_i8_vnni<kType, 1>, tokens_i8_vnni<kType, 2>, tokens_i8_vnni<kType, 3>,
                                           tokens_i8_vnni<kType, 4>, tokens_i8_vnni<kType, 5>, tokens_i8_vnni<kType, 6>,
                                           tokens_i8_vnni<kType, 7>, tokens_i8_vnni<kType, 8>};
    static constexpr RowsTokens vnni512[8] = {tokens_i8_vnni512<kType, 1>, tokens_i8_vnni512<kType, 2>,
                                              tokens_i8_vnni512<kType, 3>, tokens_i8_vnni512<kType, 4>,
                                              tokens_i8_vnni512<kType, 5>, tokens_i8_vnni512<kType, 6>,
                                              tokens_i8_vnni512<kType, 7>, tokens_i8_vnni512<kType, 8>};
    switch (kind) {
        case Int8Dot::avx2: return avx2[T - 1];
        case Int8Dot::avx_vnni: return vnni[T - 1];
        case Int8Dot::avx512_vnni: return vnni512[T - 1];
        case Int8Dot::none: break;
    }
    return nullptr;
}

template <ggml::Type kType>
RowsKernel rows_for(Int8Dot kind) {
    switch (kind) {
        case Int8Dot::avx2: return rows_i8_avx2<kType>;
        case Int8Dot::avx_vnni: return rows_i8_vnni<kType>;
        case Int8Dot::avx512_vnni: return rows_i8_vnni512<kType>;
        case Int8Dot::none: break;
    }
    return nullptr;
}

// Helpers of the rows8 loops (clang does not carry a function's target into its lambdas).
__attribute__((target("avx2,fma,f16c"))) inline __m256i broadcast_run(const std::int8_t* x) {
    std::int32_t v;
    std::memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

__attribute__((target("avx2,fma,f16c"))) inline __m256i load_run(const std::uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// VPDPBUSD's sum on AVX2 alone: VPMADDUBSW's pairs, then VPMADDWD's. Exact only while each
// pair's sum fits 16 bits: Q4_0's nibbles (0..15) against x (-127..127), not Q8_0's q + 128.
__attribute__((target("avx2,fma,f16c"))) inline __m256i dpbusd_avx2(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

// Groups of 8 rows in the rows8 layout: lane j of every vector is row j, so a block's four-byte
// runs of x are broadcast and the quants multiply as loaded. The quants are unsigned (Q4_0's
// nibbles 0..15, Q8_0's q + 128): the offset times the block's sum of x is taken back at the
// start. Two sums per block halve the chain of dependent dot products.
#define ANE_ROWS8_LOOP(DPBUSD)                                                                                       \
    constexpr std::size_t qb = Q4 ? 16 : 32, gbb = 8 * (qb + 2);                                                     \
    constexpr int offset = Q4 ? 8 : 128;                                                                             \
    const __m256i low4 = _mm256_set1_epi8(15);                                                                       \
    for (int g = 0; g < groups; ++g) {                                                                               \
        const std::uint8_t* blk = W + std::size_t(g) * nb * gbb;                                                     \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                                               \
        for (int b = 0; b < nb; ++b, blk += gbb) {                                                                   \
            for (std::size_t l = 0; l < gbb; l += 64)                                                                \
                _mm_prefetch(reinterpret_cast<const char*>(blk + kPrefetchAhead + l), _MM_HINT_T0);                  \
            const std::int8_t* x = xq + 32 * std::size_t(b);                                                         \
            __m256i s0 = _mm256_set1_epi32(-offset * sx[b]), s1 = _mm256_setzero_si256();                            \
            if (Q4) {                                                                                                \
                for (int c = 0; c < 4; ++c) {                                                                        \
                    const __m256i v = load_run(blk + 16 + 32 * std::size_t(c));                                      \
                    s0 = DPBUSD(s0, _mm256_and_si256(v, low4), broadcast_run(x + 4 * c));                            \
                    s1 = DPBUSD(s1, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), broadcast_run(x + 4 * (c + 4))); \
                }                                                                                                    \
            } else {                                                                                                 \
                for (int c = 0; c < 8; c += 2) {                                                                     \
                    s0 = DPBUSD(s0, load_run(blk + 16 + 32 * std::size_t(c)), broadcast_run(x + 4 * c));             \
                    s1 = DPBUSD(s1, load_run(blk + 16 + 32 * std::size_t(c + 1)), broadcast_run(x + 4 * (c + 1)));   \
                }                                                                                                    \
            }                                                                                                        \
            const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk))), \
                                               _mm256_set1_ps(xd[b]));                                               \
            const __m256 dot = _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1));                                         \
            if (b & 1)                                                                                               \
                acc1 = _mm256_fmadd_ps(scale, dot, acc1);                                                            \
            else                                                                                                     \
                acc0 = _mm256_fmadd_ps(scale, dot, acc0);                                                            \
        }                                                                                                            \
        _mm256_storeu_ps(out + 8 * std::size_t(g), _mm256_add_ps(acc0, acc1));                                       \
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

// Q4_0 only (see dpbusd_avx2).
__attribute__((target("avx2,fma,f16c"))) void rows8_q4_avx2(const std::uint8_t* W, int groups, const std::int8_t* xq,
                                                             const float* xd, const std::int32_t* sx, int nb,
                                                             float* out) {
    constexpr bool Q4 = true;
    ANE_ROWS8_LOOP(dpbusd_avx2)
}
#undef ANE_ROWS8_LOOP

// Several tokens against groups of 8 rows (a prompt): each block's quants are loaded and
// unpacked once and serve T tokens, whose sums stay in registers.
#define ANE_ROWS8_TOKENS_LOOP(DPBUSD)                                                                                \
    constexpr std::size_t qb = Q4 ? 16 : 32, gbb = 8 * (qb + 2);                                                     \
    constexpr int offset = Q4 ? 8 : 128;                                                                             \
    const __m256i low4 = _mm256_set1_epi8(15);                                                                       \
    for (int g = 0; g < groups; ++g) {                                                                               \
        const std::uint8_t* blk = W + std::size_t(g) * nb * gbb;                                                     \
        __m256 acc[T];                                                                                               \
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();                                                    \
        for (int b = 0; b < nb; ++b, blk += gbb) {                                                                   \
            __m256i w[8];                                                                                            \
            for (int c = 0; c < int(qb / 4); ++c) {                                                                  \
                const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * std::size_t(c))); \
                if (Q4) {                                                                                            \
                    w[c] = _mm256_and_si256(v, low4);                                                                \
                    w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);                                      \
                } else {                                                                                             \
                    w[c] = v;                                                                                        \
                }                                                                                                    \
            }                                                                                                        \
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));               \
            for (int t = 0; t < T; ++t) {                                                                            \
                const std::int8_t* x = tok[t].q + 32 * std::size_t(b);                                               \
                __m256i s0 = _mm256_set1_epi32(-offset * tok[t].sum[b]), s1 = _mm256_setzero_si256();                \
                for (int c = 0; c < 8; c += 2) {                                                                     \
                    std::int32_t v0, v1;                                                                             \
                    std::memcpy(&v0, x + 4 * c, 4);                                                                  \
                    std::memcpy(&v1, x + 4 * c + 4, 4);                                                              \
                    s0 = DPBUSD(s0, w[c], _mm256_set1_epi32(v0));                                                    \
                    s1 = DPBUSD(s1, w[c + 1], _mm256_set1_epi32(v1));                                                \
                }                                                                                                    \
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(tok[t].d[b])),                             \
                                         _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc[t]);                      \
            }                                                                                                        \
        }                                                                                                            \
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + std::size_t(t) * ldo + 8 * std::size_t(g), acc[t]);       \
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

template <int T>  // Q4_0 only (see dpbusd_avx2)
__attribute__((target("avx2,fma,f16c"))) void rows8_tokens_q4_avx2(const std::uint8_t* W, int groups,
                                                                    const TokenBlocks* tok, int nb, float* out,
                                                                    std::size_t ldo) {
    constexpr bool Q4 = true;
    ANE_ROWS8_TOKENS_LOOP(dpbusd_avx2)
}
#undef ANE_ROWS8_TOKENS_LOOP

#endif

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) void quantize_vector_avx2(const float* x, int K, std::int8_t* q, float* d,
                                                               std::int32_t* sum) {
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
        const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        const __m128i s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
        sum[b] = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + std::size_t(b) * kQK),
                            _mm256_permutevar8x32_epi32(bytes, order));
    }
}
#endif

}  // namespace

void quantize_vector(const float* x, int K, std::int8_t* q, float* d, std::int32_t* sum) {
#if defined(__x86_64__)
    if (best_matvec_isa() != MatvecIsa::portable) return quantize_vector_avx2(x, K, q, d, sum);
#endif
    for (int b = 0; b < K / kQK; ++b) {
        float amax = 0.0f;
        for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(x[b * kQK + i]));
        d[b] = amax / 127.0f;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        sum[b] = 0;
        for (int i = 0; i < kQK; ++i) {
            q[b * kQK + i] = static_cast<std::int8_t>(std::lrintf(x[b * kQK + i] * id));
            sum[b] += q[b * kQK + i];
        }
    }
}

void QuantizedVector::set(const float* x, int K) {
    q.resize(std::size_t(K));
    d.resize(std::size_t(K / kQK));
    sum.resize(std::size_t(K / kQK));
    quantize_vector(x, K, q.data(), d.data(), sum.data());
}

RowsKernel rows_kernel(Int8Dot kind, ggml::Type type) {
#if defined(__x86_64__)
    switch (type) {
        case ggml::Type::Q8_0: return rows_for<ggml::Type::Q8_0>(kind);
        case ggml::Type::Q4_0: return rows_for<ggml::Type::Q4_0>(kind);
        case ggml::Type::Q5_0: return rows_for<ggml::Type::Q5_0>(kind);
        case ggml::Type::Q4_1: return rows_for<ggml::Type::Q4_1>(kind);
        case ggml::Type::Q5_1: return rows_for<ggml::Type::Q5_1>(kind);
        default: break;
    }
#endif
    (void)kind;
    (void)type;
    return nullptr;
}


Rows8 rows8_kernel(Int8Dot kind, bool q4) {
#if defined(__x86_64__)
    if (kind == Int8Dot::avx_vnni) return q4 ? rows8_vnni<true> : rows8_vnni<false>;
    if (kind == Int8Dot::avx512_vnni && has_int8_avx512()) return rows8_kernel_avx512(q4);
    if (kind == Int8Dot::avx512_vnni) return q4 ? rows8_vnni512<true> : rows8_vnni512<false>;
    if (kind == Int8Dot::avx2 && q4) return rows8_q4_avx2;
#endif
    (void)kind;
    (void)q4;
    return nullptr;
}

namespace {
template <bool Q4>
Rows8Tokens rows8_tokens_for(Int8Dot kind, int T) {
#if defined(__x86_64__)
    static constexpr Rows8Tokens vnni[4] = {rows8_tokens_vnni<Q4, 1>, rows8_tokens_vnni<Q4, 2>,
                                            rows8_tokens_vnni<Q4, 3>, rows8_tokens_vnni<Q4, 4>};
    static constexpr Rows8Tokens vnni512[4] = {rows8_tokens_vnni512<Q4, 1>, rows8_tokens_vnni512<Q4, 2>,
                                               rows8_tokens_vnni512<Q4, 3>, rows8_tokens_vnni512<Q4, 4>};
    static constexpr Rows8Tokens q4_avx2[4] = {rows8_tokens_q4_avx2<1>, rows8_tokens_q4_avx2<2>,
                                               rows8_tokens_q4_avx2<3>, rows8_tokens_q4_avx2<4>};
    if (kind == Int8Dot::avx_vnni) return vnni[T - 1];
    if (kind == Int8Dot::avx512_vnni) return vnni512[T - 1];
    if (kind == Int8Dot::avx2 && Q4) return q4_avx2[T - 1];
#endif
    (void)kind;
    (void)T;
    return nullptr;
}
}  // namespace

Rows8Tokens rows8_tokens_kernel(Int8Dot kind, bool q4, int T) {
    return q4 ? rows8_tokens_for<true>(kind, T) : rows8_tokens_for<false>(kind, T);
}

int max_tokens(Int8Dot kind) { return kind == Int8Dot::avx_vnni || kind == Int8Dot::avx512_vnni ? 8 : 4; }

RowsTokens rows_tokens_kernel(Int8Dot kind, ggml::Type type, int T) {
#if defined(__x86_64__)
    if (T < 1 || T > max_tokens(kind)) return nullptr;
    switch (type) {
        case ggml::Type::Q8_0: return tokens_for<ggml::Type::Q8_0>(kind, T);
        case ggml::Type::Q4_0: return tokens_for<ggml::Type::Q4_0>(kind, T);
        case ggml::Type::Q5_0: return tokens_for<ggml::Type::Q5_0>(kind, T);
        case ggml::Type::Q4_1: return tokens_for<ggml::Type::Q4_1>(kind, T);
        case ggml::Type::Q5_1: return tokens_for<ggml::Type::Q5_1>(kind, T);
        default: break;
    }
#endif
    (void)kind;
    (void)type;
    (void)T;
    return nullptr;
}

}  // namespace ane::int8
