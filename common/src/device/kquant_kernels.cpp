// K-quant rows (super-blocks of 256 values) against vectors quantized as llama.cpp's Q8_K
// (one scale per 256 values, the sums of each 16), with integer dot products: per super-block
// Q4_K, Q5_K:  d_x · (d · Σ_s sc_s Σ q·q_x − dmin · Σ_s m_s Σ q_x)
// Q6_K:        d_x · d · Σ_16 sc · Σ (q − 32)·q_x
// summed in int32 over the super-block. Up to four tokens share each unpacking of a row. AVX2
// with F16C here; 512-bit kernels in kquant_kernels_avx512.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ane/formats/ggml_quants.hpp"
#include "int8_kernels.hpp"
#include "kquant_blocks.hpp"
#include "simd_sums.hpp"

namespace ane::int8 {

void KVector::set(const float* x, int K) {
    q.resize(std::size_t(K));
    d.resize(std::size_t(K / 256));
    sum16.resize(std::size_t(K / 16));
    sum32.resize(std::size_t(K / 32));
    for (int b = 0; b < K / 256; ++b) {
        const float* xb = x + std::size_t(b) * 256;
        float amax = 0.0f;
        for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(xb[i]));
        d[std::size_t(b)] = amax / 127.0f;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        std::int8_t* qb = q.data() + std::size_t(b) * 256;
        for (int i = 0; i < 256; ++i) qb[i] = static_cast<std::int8_t>(std::lrintf(xb[i] * id));
        for (int g = 0; g < 16; ++g) {
            int s = 0;
            for (int i = 0; i < 16; ++i) s += qb[16 * g + i];
            sum16[std::size_t(b) * 16 + std::size_t(g)] = std::int16_t(s);  // |s| <= 16 * 127
        }
        const std::int16_t* s16 = sum16.data() + std::size_t(b) * 16;
        for (int g = 0; g < 8; ++g) sum32[std::size_t(b) * 8 + std::size_t(g)] = std::int16_t(s16[2 * g] + s16[2 * g + 1]);
    }
}

namespace {

using ggml::Type;

#if defined(__x86_64__)

using namespace kq;

// Σ over 32 values of u·x·s (u unsigned bytes, x signed; s per 16-bit pair), as eight int32s.
__attribute__((target("avx2,fma,f16c"))) inline __m256i scaled_dot32(__m256i u, __m256i x, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), s);
}

// Bit k of each byte of qh, as 16 or 0 (the fifth bit of a Q5_K value).
__attribute__((target("avx2,fma,f16c"))) inline __m256i fifth_bit(__m256i qh, int k) {
    const __m256i bit = _mm256_set1_epi8(char(1 << k));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(16));
}

// Q4_K (144 bytes: d, dmin, scales[12], qs[128]) and Q5_K (176: d, dmin, scales[12], qh[32],
// qs[128]): the 64 values of chunk j are qs[32j..] low nibbles, then high nibbles.
template <bool kFive, int T>
__attribute__((target("avx2,fma,f16c"))) void rows_q45k(const std::uint8_t* W, std::size_t row_bytes, int rows,
                                                   const KVector* const* x, int K, float* out, std::size_t ldo) {
    constexpr int kBytes = kFive ? 176 : 144;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int r = 0; r < rows; ++r) {
        const std::uint8_t* row = W + std::size_t(r) * row_bytes;
        __m256 acc[T];
        float mins[T];
        for (int t = 0; t < T; ++t) {
            acc[t] = _mm256_setzero_ps();
            mins[t] = 0.0f;
        }
        for (int sb = 0; sb < K / 256; ++sb) {
            const std::uint8_t* b = row + std::size_t(sb) * kBytes;
            prefetch_block(b, kBytes);
            const float d = half_at(b), dmin = half_at(b + 2);
            std::uint8_t sc[8], m[8];
            unpack_scales_mins(b + 4, sc, m);
            const std::uint8_t* qs = b + (kFive ? 48 : 16);
            const __m256i qh = kFive ? load32(b + 16) : _mm256_setzero_si256();
            __m256i isum[T];
            for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
            for (int j = 0; j < 4; ++j) {
                const __m256i bytes = load32(qs + 32 * j);
                __m256i lo = _mm256_and_si256(bytes, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
                if (kFive) {
                    lo = _mm256_or_si256(lo, fifth_bit(qh, 2 * j));
                    hi = _mm256_or_si256(hi, fifth_bit(qh, 2 * j + 1));
                }
                const __m256i s_lo = _mm256_set1_epi16(std::int16_t(sc[2 * j]));
                const __m256i s_hi = _mm256_set1_epi16(std::int16_t(sc[2 * j + 1]));
                for (int t = 0; t < T; ++t) {
                    const std::int8_t* xq = x[t]->q.data() + std::size_t(sb) * 256 + 64 * j;
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(scaled_dot32(lo, load32(xq), s_lo),
                                                                         scaled_dot32(hi, load32(xq + 32), s_hi)));
                }
            }
            for (int t = 0; t < T; ++t) {
                const float dx = x[t]->d[std::size_t(sb)];
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
                mins[t] += dmin * dx * float(mins_dot(m, x[t]->sum32.data() + std::size_t(sb) * 8));
            }
        }
        for (int t = 0; t < T; ++t) out[std::size_t(t) * ldo + std::size_t(r)] = simd::hsum256(acc[t]) - mins[t];
    }
}

// Q6_K (210 bytes: ql[128], qh[64], int8 scales[16], d): in each half of 128 values, block k of
// 32 is ql[k & 1 ? 32.. : 0..] (low nibbles for k < 2, high after) with bits 2k, 2k+1 of qh;
// scale 2k covers its first 16 values, 2k+1 the next. The −32 comes off through the sums of 16.
template <int T>
__attribute__((target("avx2,fma,f16c"))) void rows_q6k(const std::uint8_t* W, std::size_t row_bytes, int rows,
                                                  const KVector* const* x, int K, float* out, std::size_t ldo) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), two_bits = _mm256_set1_epi8(0x30);
    for (int r = 0; r < rows; ++r) {
        const std::uint8_t* row = W + std::size_t(r) * row_bytes;
        __m256 acc[T];
        float offsets[T];
        for (int t = 0; t < T; ++t) {
            acc[t] = _mm256_setzero_ps();
            offsets[t] = 0.0f;
        }
        for (int sb = 0; sb < K / 256; ++sb) {
            const std::uint8_t* b = row + std::size_t(sb) * 210;
            prefetch_block(b, 210);
            const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
            const float d = half_at(b + 208);
            __m256i isum[T];
            for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
            for (int n = 0; n < 2; ++n) {
                const __m256i ql0 = load32(b + 64 * n), ql1 = load32(b + 64 * n + 32), qh = load32(b + 128 + 32 * n);
                const __m256i q[4] = {
                    _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), two_bits)),
                    _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), two_bits)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, two_bits)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), two_bits))};
                for (int k = 0; k < 4; ++k) {
                    const int i = 8 * n + 2 * k;  // the scale of the block's first 16 values
                    const __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[i + 1]), _mm_set1_epi16(sc[i]));
                    for (int t = 0; t < T; ++t) {
                        const std::int8_t* xq = x[t]->q.data() + std::size_t(sb) * 256 + 128 * n + 32 * k;
                        isum[t] = _mm256_add_epi32(isum[t], scaled_dot32(q[k], load32(xq), s));
                    }
                }
            }
            for (int t = 0; t < T; ++t) {
                const float dx = x[t]->d[std::size_t(sb)];
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * dx), acc[t]);
                offsets[t] += 32.0f * d * dx * float(scales_dot(sc, x[t]->sum16.data() + std::size_t(sb) * 16));
            }
        }
        for (int t = 0; t < T; ++t) out[std::size_t(t) * ldo + std::size_t(r)] = simd::hsum256(acc[t]) - offsets[t];
    }
}

template <template <int> class Rows>
KRowsKernel by_tokens(int T) {
    switch (T) {
        case 1: return Rows<1>::run;
        case 2: return Rows<2>::run;
        case 3: return Rows<3>::run;
        case 4: return Rows<4>::run;
    }
    return nullptr;
}

template <int T>
struct Q4K {
    static constexpr KRowsKernel run = rows_q45k<false, T>;
};
template <int T>
struct Q5K {
    static constexpr KRowsKernel run = rows_q45k<true, T>;
};
template <int T>
struct Q6K {
    static constexpr KRowsKernel run = rows_q6k<T>;
};

#endif

}  // namespace

KRowsKernel k_rows_kernel(Int8Dot kind, ggml::Type type, int T) {
#if defined(__x86_64__)
    if (kind == Int8Dot::none) return nullptr;  // every other kind has AVX2
    if ((kind == Int8Dot::avx_vnni || kind == Int8Dot::avx512_vnni) && has_int8_avx512())
        return k_rows_kernel_avx512(type, T);
    switch (type) {
        case Type::Q4_K: return by_tokens<Q4K>(T);
        case Type::Q5_K: return by_tokens<Q5K>(T);
        case Type::Q6_K: return by_tokens<Q6K>(T);
        default: return nullptr;
    }
#else
    (void)kind;
    (void)type;
    (void)T;
    return nullptr;
#endif
}

}  // namespace ane::int8
