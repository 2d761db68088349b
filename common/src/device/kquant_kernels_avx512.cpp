// The K-quant rows with 512-bit vectors (AVX-512 BW and VNNI: Zen 4/5, Ice Lake and later):
// the same integer sums as the AVX2 kernels, but each instruction takes 64 consecutive values
// (two 32-value sub-blocks of Q4_K/Q5_K, four 16-value groups of Q6_K) and their scales at
// once, and `vpdpwssd` adds the scaled pairs into the int32 sums in one step. A prompt's
// products (up to four tokens per unpacking) were bound by the AVX2 kernels' instructions:
// stories110M Q4_K_M prompt 542 -> 689 tok/s at one thread (Zen 5); decoding, which mostly waits
// on memory, gains 4-20%.
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 broadcast, insert and conversion intrinsics start from _mm512_undefined_*(),
// which its own -Wuninitialized then reports inside the header.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "cpu_features.hpp"
#include "int8_kernels.hpp"
#include "kquant_blocks.hpp"
#include "simd_sums.hpp"

namespace ane::int8 {

#if defined(__x86_64__)

namespace {

using namespace kq;

#define ANE_KQ512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

ANE_KQ512 inline __m512i lanes_of_halves(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Q4_K / Q5_K: chunk j (qs[32j..32j+31]) holds values 64j.. in its low nibbles and 64j+32.. in
// its high ones. Broadcast to both halves of a register and shifted by 0 and 4, it becomes the
// 64 values 64j..64j+63 in order, against 64 consecutive input bytes, with scales 2j and 2j+1.
template <bool kFive, int T>
ANE_KQ512 void rows_q45k_512(const std::uint8_t* W, std::size_t row_bytes, int rows, const KVector* const* x, int K,
                             float* out, std::size_t ldo) {
    constexpr int kBytes = kFive ? 176 : 144;
    const __m512i low4 = _mm512_set1_epi8(0x0F), sixteen = _mm512_set1_epi8(16);
    const __m512i nibble_shift = lanes_of_halves(_mm256_setzero_si256(), _mm256_set1_epi16(4));
    for (int r = 0; r < rows; ++r) {
        const std::uint8_t* row = W + std::size_t(r) * row_bytes;
        __m512 acc[T];
        float mins[T];
        for (int t = 0; t < T; ++t) {
            acc[t] = _mm512_setzero_ps();
            mins[t] = 0.0f;
        }
        for (int sb = 0; sb < K / 256; ++sb) {
            const std::uint8_t* b = row + std::size_t(sb) * kBytes;
            prefetch_block(b, kBytes);
            const float d = half_at(b), dmin = half_at(b + 2);
            std::uint8_t sc[8], m[8];
            unpack_scales_mins(b + 4, sc, m);
            const __m128i sc16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc)));
            const __m512i scales = _mm512_castsi128_si512(sc16);
            const std::uint8_t* qs = b + (kFive ? 48 : 16);
            const __m512i qh = kFive ? _mm512_broadcast_i64x4(load32(b + 16)) : _mm512_setzero_si512();
            __m512i isum[T];
            for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
            for (int j = 0; j < 4; ++j) {
                const __m512i bytes = _mm512_broadcast_i64x4(load32(qs + 32 * j));
                __m512i q = _mm512_and_si512(_mm512_srlv_epi16(bytes, nibble_shift), low4);
                if (kFive) {  // the fifth bit: bit 2j of qh for the low nibbles, 2j + 1 for the high
                    const __m512i bit = lanes_of_halves(_mm256_set1_epi8(char(1 << (2 * j))),
                                                        _mm256_set1_epi8(char(1 << (2 * j + 1))));
                    q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh, bit), q, sixteen);
                }
                const __m512i pick = lanes_of_halves(_mm256_set1_epi16(std::int16_t(2 * j)),
                                                     _mm256_set1_epi16(std::int16_t(2 * j + 1)));
                const __m512i s = _mm512_permutexvar_epi16(pick, scales);
                for (int t = 0; t < T; ++t) {
                    const __m512i xq = _mm512_loadu_si512(x[t]->q.data() + std::size_t(sb) * 256 + 64 * j);
                    isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(q, xq), s);
                }
            }
            for (int t = 0; t < T; ++t) {
                const float dx = x[t]->d[std::size_t(sb)];
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * dx), acc[t]);
                mins[t] += dmin * dx * float(mins_dot(m, x[t]->sum32.data() + std::size_t(sb) * 8));
            }
        }
        for (int t = 0; t < T; ++t) out[std::size_t(t) * ldo + std::size_t(r)] = simd::hsum512(acc[t]) - mins[t];
    }
}

// Q6_K: in half n, ql[64n..64n+63] read whole gives values 128n.. (low nibbles, with qh's bits
// 0-1 for its first 32 bytes and 2-3 for the next) and 128n+64.. (high nibbles, qh's bits 4-5
// and 6-7): two registers of 64 consecutive values, each with four 16-value scales.
template <int T>
ANE_KQ512 void rows_q6k_512(const std::uint8_t* W, std::size_t row_bytes, int rows, const KVector* const* x, int K,
                            float* out, std::size_t ldo) {
    const __m512i low4 = _mm512_set1_epi8(0x0F), two_bits = _mm512_set1_epi8(0x30);
    const __m512i qh_up = lanes_of_halves(_mm256_set1_epi16(4), _mm256_set1_epi16(2));
    const __m512i qh_down = lanes_of_halves(_mm256_setzero_si256(), _mm256_set1_epi16(2));
    // 16-bit lane i holds the pair of values 2i, 2i+1, in 16-value group i / 8.
    alignas(64) static const std::int16_t group_of_lane[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                               2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    const __m512i group = _mm512_load_si512(group_of_lane);
    for (int r = 0; r < rows; ++r) {
        const std::uint8_t* row = W + std::size_t(r) * row_bytes;
        __m512 acc[T];
        float offsets[T];
        for (int t = 0; t < T; ++t) {
            acc[t] = _mm512_setzero_ps();
            offsets[t] = 0.0f;
        }
        for (int sb = 0; sb < K / 256; ++sb) {
            const std::uint8_t* b = row + std::size_t(sb) * 210;
            prefetch_block(b, 210);
            const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
            const float d = half_at(b + 208);
            const __m512i scales =
                _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))));
            __m512i isum[T];
            for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
            for (int n = 0; n < 2; ++n) {
                const __m512i ql = _mm512_loadu_si512(b + 64 * n);
                const __m512i qh = _mm512_broadcast_i64x4(load32(b + 128 + 32 * n));
                const __m512i q[2] = {
                    _mm512_or_si512(_mm512_and_si512(ql, low4),
                                    _mm512_and_si512(_mm512_sllv_epi16(qh, qh_up), two_bits)),
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                    _mm512_and_si512(_mm512_srlv_epi16(qh, qh_down), two_bits))};
                for (int h = 0; h < 2; ++h) {
                    const __m512i pick = _mm512_add_epi16(group, _mm512_set1_epi16(std::int16_t(8 * n + 4 * h)));
                    const __m512i s = _mm512_permutexvar_epi16(pick, scales);
                    for (int t = 0; t < T; ++t) {
                        const std::int8_t* at = x[t]->q.data() + std::size_t(sb) * 256 + 128 * n + 64 * h;
                        const __m512i xq = _mm512_loadu_si512(at);
                        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(q[h], xq), s);
                    }
                }
            }
            for (int t = 0; t < T; ++t) {
                const float dx = x[t]->d[std::size_t(sb)];
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * dx), acc[t]);
                offsets[t] += 32.0f * d * dx * float(scales_dot(sc, x[t]->sum16.data() + std::size_t(sb) * 16));
            }
        }
        for (int t = 0; t < T; ++t) out[std::size_t(t) * ldo + std::size_t(r)] = simd::hsum512(acc[t]) - offsets[t];
    }
}

#undef ANE_KQ512

template <int T>
KRowsKernel for_type(ggml::Type type) {
    switch (type) {
        case ggml::Type::Q4_K: return rows_q45k_512<false, T>;
        case ggml::Type::Q5_K: return rows_q45k_512<true, T>;
        case ggml::Type::Q6_K: return rows_q6k_512<T>;
        default: return nullptr;
    }
}

}  // namespace

bool has_int8_avx512() {
    static const bool yes = cpu::has_avx512f() && __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                            cpu::has_f16c();
    return yes;
}

KRowsKernel k_rows_kernel_avx512(ggml::Type type, int T) {
    switch (T) {
        case 1: return for_type<1>(type);
        case 2: return for_type<2>(type);
        case 3: return for_type<3>(type);
        case 4: return for_type<4>(type);
    }
    return nullptr;
}

#else

bool has_int8_avx512() { return false; }
KRowsKernel k_rows_kernel_avx512(ggml::Type, int) { return nullptr; }

#endif

}  // namespace ane::int8
