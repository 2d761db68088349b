#include "ane/device/attend_f16.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "ane/half.hpp"
#include "ane/model/fast_math.hpp"
#include "ane/simd_clones.hpp"
#include "simd_sums.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ane {

namespace {

// p[j] = exp(p[j] - max) for j < span; returns the softmax's normalisation, which the kernels
// apply to the output instead of to every weight.
ANE_SIMD_CLONES float exponentiate(float* p, int span) { return softmax_exp(p, span, max_of(p, span)); }

void attend_portable(const float* q, const std::uint16_t* k, const std::uint16_t* v, int span, int hd, float scale,
                     float* p, float* out) {
    thread_local std::vector<float> row;
    row.resize(std::size_t(hd));
    for (int j = 0; j < span; ++j) {
        fp16_to_float(k + std::size_t(j) * std::size_t(hd), row.data(), std::size_t(hd));
        float dot = 0.0f;
        for (int d = 0; d < hd; ++d) dot += q[d] * row[std::size_t(d)];
        p[j] = dot * scale;
    }
    const float inv = exponentiate(p, span);
    std::fill(out, out + hd, 0.0f);
    for (int j = 0; j < span; ++j) {
        fp16_to_float(v + std::size_t(j) * std::size_t(hd), row.data(), std::size_t(hd));
        for (int d = 0; d < hd; ++d) out[d] += p[j] * row[std::size_t(d)];
    }
    for (int d = 0; d < hd; ++d) out[d] *= inv;
}

// The largest divisor of `blocks` that is at most `limit`: the output blocks one sweep over
// the values keeps in registers.
int chunk_blocks(int blocks, int limit) {
    int nb = std::min(blocks, limit);
    while (blocks % nb != 0) --nb;
    return nb;
}

#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

using simd::hsum256;
using simd::hsum512;

__attribute__((target("avx512f"))) inline __m512 widen16(const std::uint16_t* h) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
}

// The four sums of a0..a3 as one vector: pairs interleaved and added, then the 128-bit lanes.
__attribute__((target("avx512f"))) inline __m128 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
    const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

__attribute__((target("avx512f"))) void scores_avx512(const float* q, const std::uint16_t* k, int span, int hd,
                                                       float scale, float* p) {
    const std::size_t row = std::size_t(hd);
    int j = 0;
    for (; j + 4 <= span; j += 4) {  // four keys at a time, their sums reduced together
        const std::uint16_t* k0 = k + std::size_t(j) * row;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < hd; d += 16) {
            const __m512 qd = _mm512_loadu_ps(q + d);
            a0 = _mm512_fmadd_ps(qd, widen16(k0 + d), a0);
            a1 = _mm512_fmadd_ps(qd, widen16(k0 + row + d), a1);
            a2 = _mm512_fmadd_ps(qd, widen16(k0 + 2 * row + d), a2);
            a3 = _mm512_fmadd_ps(qd, widen16(k0 + 3 * row + d), a3);
        }
        _mm_storeu_ps(p + j, _mm_mul_ps(sum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
    }
    for (; j < span; ++j) {
        __m512 a = _mm512_setzero_ps();
        for (int d = 0; d < hd; d += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), widen16(k + j * row + d), a);
        p[j] = hsum512(a) * scale;
    }
}

// out[c0 .. c0 + 16·NB) over all values, two keys at a time into two sets of accumulators.
template <int NB>
__attribute__((target("avx512f"))) void values_avx512(const std::uint16_t* v, const float* p, int span, int hd,
                                                       int c0, float inv, float* out) {
    const std::size_t row = std::size_t(hd);
    __m512 even[NB], odd[NB];
    for (int b = 0; b < NB; ++b) even[b] = odd[b] = _mm512_setzero_ps();
    int j = 0;
    for (; j + 2 <= span; j += 2) {
        const std::uint16_t* v0 = v + std::size_t(j) * row + c0;
        const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
        for (int b = 0; b < NB; ++b) {
            even[b] = _mm512_fmadd_ps(p0, widen16(v0 + 16 * b), even[b]);
            odd[b] = _mm512_fmadd_ps(p1, widen16(v0 + row + 16 * b), odd[b]);
        }
    }
    if (j < span) {
        const __m512 pj = _mm512_set1_ps(p[j]);
        for (int b = 0; b < NB; ++b)
            even[b] = _mm512_fmadd_ps(pj, widen16(v + std::size_t(j) * row + c0 + 16 * b), even[b]);
    }
    const __m512 scale = _mm512_set1_ps(inv);
    for (int b = 0; b < NB; ++b)
        _mm512_storeu_ps(out + c0 + 16 * b, _mm512_mul_ps(_mm512_add_ps(even[b], odd[b]), scale));
}

__attribute__((target("avx512f"))) void attend_avx512(const float* q, const std::uint16_t* k, const std::uint16_t* v,
                                                       int span, int hd, float scale, float* p, float* out) {
    scores_avx512(q, k, span, hd, scale, p);
    const float inv = exponentiate(p, span);
    const int nb = chunk_blocks(hd / 16, 8);
    for (int c0 = 0; c0 < hd; c0 += 16 * nb) {
        switch (nb) {
            case 1: values_avx512<1>(v, p, span, hd, c0, inv, out); break;
            case 2: values_avx512<2>(v, p, span, hd, c0, inv, out); break;
            case 3: values_avx512<3>(v, p, span, hd, c0, inv, out); break;
            case 4: values_avx512<4>(v, p, span, hd, c0, inv, out); break;
            case 5: values_avx512<5>(v, p, span, hd, c0, inv, out); break;
            case 6: values_avx512<6>(v, p, span, hd, c0, inv, out); break;
            case 7: values_avx512<7>(v, p, span, hd, c0, inv, out); break;
            default: values_avx512<8>(v, p, span, hd, c0, inv, out); break;
        }
    }
}

__attribute__((target("avx2,fma,f16c"))) inline __m256 widen8(const std::uint16_t* h) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

__attribute__((target("avx2,fma,f16c"))) void scores_avx2(const float* q, const std::uint16_t* k, int span, int hd,
                                                           float scale, float* p) {
    const std::size_t row = std::size_t(hd);
    int j = 0;
    for (; j + 4 <= span; j += 4) {
        const std::uint16_t* k0 = k + std::size_t(j) * row;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < hd; d += 8) {
            const __m256 qd = _mm256_loadu_ps(q + d);
            a0 = _mm256_fmadd_ps(qd, widen8(k0 + d), a0);
            a1 = _mm256_fmadd_ps(qd, widen8(k0 + row + d), a1);
            a2 = _mm256_fmadd_ps(qd, widen8(k0 + 2 * row + d), a2);
            a3 = _mm256_fmadd_ps(qd, widen8(k0 + 3 * row + d), a3);
        }
        // [a0 a1 a2 a3] per 128-bit half after two rounds of pairwise sums, then the halves.
        const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
        const __m128 s = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        _mm_storeu_ps(p + j, _mm_mul_ps(s, _mm_set1_ps(scale)));
    }
    for (; j < span; ++j) {
        __m256 a = _mm256_setzero_ps();
        for (int d = 0; d < hd; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), widen8(k + j * row + d), a);
        p[j] = hsum256(a) * scale;
    }
}

template <int NB>
__attribute__((target("avx2,fma,f16c"))) void values_avx2(const std::uint16_t* v, const float* p, int span, int hd,
                                                           int c0, float inv, float* out) {
    const std::size_t row = std::size_t(hd);
    __m256 even[NB], odd[NB];
    for (int b = 0; b < NB; ++b) even[b] = odd[b] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 2 <= span; j += 2) {
        const std::uint16_t* v0 = v + std::size_t(j) * row + c0;
        const __m256 p0 = _mm256_set1_ps(p[j]), p1 = _mm256_set1_ps(p[j + 1]);
        for (int b = 0; b < NB; ++b) {
            even[b] = _mm256_fmadd_ps(p0, widen8(v0 + 8 * b), even[b]);
            odd[b] = _mm256_fmadd_ps(p1, widen8(v0 + row + 8 * b), odd[b]);
        }
    }
    if (j < span) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        for (int b = 0; b < NB; ++b)
            even[b] = _mm256_fmadd_ps(pj, widen8(v + std::size_t(j) * row + c0 + 8 * b), even[b]);
    }
    const __m256 scale = _mm256_set1_ps(inv);
    for (int b = 0; b < NB; ++b)
        _mm256_storeu_ps(out + c0 + 8 * b, _mm256_mul_ps(_mm256_add_ps(even[b], odd[b]), scale));
}

__attribute__((target("avx2,fma,f16c"))) void attend_avx2(const float* q, const std::uint16_t* k,
                                                           const std::uint16_t* v, int span, int hd, float scale,
                                                           float* p, float* out) {
    scores_avx2(q, k, span, hd, scale, p);
    const float inv = exponentiate(p, span);
    // Sixteen ymm registers: two sets of at most four accumulators.
    const int nb = chunk_blocks(hd / 8, 4);
    for (int c0 = 0; c0 < hd; c0 += 8 * nb) {
        switch (nb) {
            case 1: values_avx2<1>(v, p, span, hd, c0, inv, out); break;
            case 2: values_avx2<2>(v, p, span, hd, c0, inv, out); break;
            case 3: values_avx2<3>(v, p, span, hd, c0, inv, out); break;
            default: values_avx2<4>(v, p, span, hd, c0, inv, out); break;
        }
    }
}

#pragma GCC diagnostic pop
#endif

}  // namespace

void attend_one_f16(MatvecIsa isa, const float* q, const std::uint16_t* k, const std::uint16_t* v, int span, int hd,
                    float scale, float* p, float* out) {
#if defined(__x86_64__)
    if (isa == MatvecIsa::avx512 && hd % 16 == 0) return attend_avx512(q, k, v, span, hd, scale, p, out);
    if (isa != MatvecIsa::portable && hd % 8 == 0) return attend_avx2(q, k, v, span, hd, scale, p, out);
#else
    (void)isa;
#endif
    attend_portable(q, k, v, span, hd, scale, p, out);
}

}  // namespace ane
