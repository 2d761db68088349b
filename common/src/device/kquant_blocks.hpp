#pragma once
// What the K-quant kernels share (kquant_kernels.cpp with AVX2, kquant_kernels_avx512.cpp): a
// super-block's fields, the prefetch ahead of the rows, and the dots of the per-super-block
// scales with the input's sums that the mins and Q6_K's offset need.
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace ane::int8::kq {

// Every Int8Dot kind but none comes with F16C (best_int8_dot).
__attribute__((target("avx2,fma,f16c"))) inline float half_at(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

__attribute__((target("avx2,fma,f16c"))) inline __m256i load32(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The rows are read in order; the hardware's prefetcher alone leaves each super-block's first
// loads waiting on memory (measured: a third of the kernel's time), so the bytes kPrefetch
// ahead are asked for as each super-block starts (stories110M Q4_K_M, 1 thread: 512 bytes
// ahead 95 tok/s, 1 KB 119, 2 KB 145, 4 KB 151, 8 KB 143; none 74).
constexpr int kPrefetch = 4096;

__attribute__((target("avx2,fma,f16c"))) inline void prefetch_block(const std::uint8_t* b, int bytes) {
    for (int i = 0; i < bytes; i += 64) _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetch + i), _MM_HINT_T0);
}

__attribute__((target("avx2,fma,f16c"))) inline int hsum_epi32(__m128i v) {
    v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    return _mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32(v, 1)));
}

// Σ_s m_s · (the token's sum over sub-block s): the eight mins against eight sums of 32.
__attribute__((target("avx2,fma,f16c"))) inline int mins_dot(const std::uint8_t* m, const std::int16_t* sum32) {
    const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m)));
    return hsum_epi32(_mm_madd_epi16(mins, _mm_loadu_si128(reinterpret_cast<const __m128i*>(sum32))));
}

// Σ_g sc_g · (the token's sum over the 16 values g): Q6_K's sixteen scales against sums of 16.
__attribute__((target("avx2,fma,f16c"))) inline int scales_dot(const std::int8_t* sc, const std::int16_t* sum16) {
    const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
    const __m256i p = _mm256_madd_epi16(scales, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sum16)));
    return hsum_epi32(_mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
}

// The eight 6-bit scales and mins of a Q4_K/Q5_K super-block (ggml::scale_min_k4), four at a
// time: bytes 0-3 hold scales 0-3 and, in their top two bits, the high bits of scales 4-7;
// bytes 4-7 the same for the mins; bytes 8-11 the low four bits of scales 4-7 (low nibble)
// and mins 4-7 (high nibble).
inline void unpack_scales_mins(const std::uint8_t* p, std::uint8_t* sc, std::uint8_t* m) {
    std::uint32_t w[3];
    std::memcpy(w, p, 12);
    const std::uint32_t six = 0x3f3f3f3fu, four = 0x0f0f0f0fu, two = 0x03030303u;
    const std::uint32_t s[2] = {w[0] & six, (w[2] & four) | (((w[0] >> 6) & two) << 4)};
    const std::uint32_t n[2] = {w[1] & six, ((w[2] >> 4) & four) | (((w[1] >> 6) & two) << 4)};
    std::memcpy(sc, s, 8);  // little-endian: byte j of each word is value j
    std::memcpy(m, n, 8);
}

}  // namespace ane::int8::kq
#endif
