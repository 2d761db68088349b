#include "ane/half.hpp"

#include <bit>
#include <cstring>

#include "ane/simd_clones.hpp"
#include "device/cpu_features.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace ane {

float fp16_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    std::uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13) | (mant ? 0x00400000u : 0u);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        // Subnormal: normalise the mantissa.
        int e = -1;
        do {
            ++e;
            mant <<= 1;
        } while ((mant & 0x400u) == 0);
        bits = sign | (std::uint32_t(112 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
    return std::bit_cast<float>(bits);
}

std::uint16_t float_to_fp16(float f) {
    const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
    const std::uint32_t abs = x & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u) {  // inf or NaN
        const std::uint16_t mant = abs > 0x7F800000u ? (0x200u | ((abs >> 13) & 0x3FFu)) : 0u;
        return sign | 0x7C00u | mant;
    }
    if (abs >= 0x477FF000u) return sign | 0x7C00u;  // rounds to >= 65520: overflow to inf
    if (abs < 0x38800000u) {                         // below the smallest normal half (2^-14)
        if (abs < 0x33000000u) return sign;          // below half the smallest subnormal: zero
        const std::uint32_t e = abs >> 23;
        const std::uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
        const std::uint32_t shift = 126 - e;  // 14 - (e - 127) + 13 - 1 + 1
        std::uint32_t half = mant >> shift;
        const std::uint32_t rem = mant & ((1u << shift) - 1);
        const std::uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
        return sign | static_cast<std::uint16_t>(half);
    }
    std::uint32_t h = ((abs >> 13) - (112u << 10));
    const std::uint32_t rem = abs & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
    return sign | static_cast<std::uint16_t>(h);
}

float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t(b) << 16); }

std::uint16_t float_to_bf16(float f) {
    std::uint32_t x = std::bit_cast<std::uint32_t>(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);  // quiet NaN
    x += 0x7FFFu + ((x >> 16) & 1u);
    return static_cast<std::uint16_t>(x >> 16);
}

namespace {

// The bulk conversions are chosen once, at run time, by what the CPU has.
enum class Isa { scalar, f16c, avx512 };

#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void to_float_f16c(const std::uint16_t* in, float* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
    for (; i < n; ++i) out[i] = fp16_to_float(in[i]);
}
__attribute__((target("avx,f16c"))) void to_half_f16c(const float* in, std::uint16_t* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; ++i) out[i] = float_to_fp16(in[i]);
}
__attribute__((target("avx,f16c"))) void round_f16c(float* x, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; i < n; ++i) x[i] = fp16_to_float(float_to_fp16(x[i]));
}
// GCC 12 warns about the undefined upper lanes inside its own AVX-512 conversion intrinsics.
#pragma GCC diagnostic push
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) void to_float_avx512(const std::uint16_t* in, float* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i))));
    to_float_f16c(in + i, out + i, n - i);
}
__attribute__((target("avx512f"))) void to_half_avx512(const float* in, std::uint16_t* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    to_half_f16c(in + i, out + i, n - i);
}
__attribute__((target("avx512f"))) void round_avx512(float* x, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    round_f16c(x + i, n - i);
}
#pragma GCC diagnostic pop
// CPUID and XGETBV directly: F16C is not a feature name every compiler's
// __builtin_cpu_supports knows. The OS must save the YMM (and for AVX-512 the ZMM) state.
Isa detect() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::scalar;
    const bool osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
    if (!osxsave || !avx || !f16c) return Isa::scalar;
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0x6u) != 0x6u) return Isa::scalar;  // XMM and YMM state
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 16)) && (xcr0_lo & 0xE6u) == 0xE6u &&
        cpu::allows(cpu::Isa::avx512))
        return Isa::avx512;  // AVX-512F with opmask, ZMM_Hi256 and Hi16_ZMM state
    return cpu::allows(cpu::Isa::avx2) ? Isa::f16c : Isa::scalar;
}
#else
Isa detect() { return Isa::scalar; }
#endif

Isa isa() {
    static const Isa chosen = detect();
    return chosen;
}

}  // namespace

const char* fp16_conversion_isa() {
    switch (isa()) {
        case Isa::avx512: return "AVX-512";
        case Isa::f16c: return "F16C";
        default: return "scalar";
    }
}

void fp16_to_float(const std::uint16_t* in, float* out, std::size_t n) {
#if defined(__x86_64__)
    if (isa() == Isa::avx512) return to_float_avx512(in, out, n);
    if (isa() == Isa::f16c) return to_float_f16c(in, out, n);
#endif
    for (std::size_t i = 0; i < n; ++i) out[i] = fp16_to_float(in[i]);
}
void float_to_fp16(const float* in, std::uint16_t* out, std::size_t n) {
#if defined(__x86_64__)
    if (isa() == Isa::avx512) return to_half_avx512(in, out, n);
    if (isa() == Isa::f16c) return to_half_f16c(in, out, n);
#endif
    for (std::size_t i = 0; i < n; ++i) out[i] = float_to_fp16(in[i]);
}
void round_to_fp16(float* x, std::size_t n) {
#if defined(__x86_64__)
    if (isa() == Isa::avx512) return round_avx512(x, n);
    if (isa() == Isa::f16c) return round_f16c(x, n);
#endif
    for (std::size_t i = 0; i < n; ++i) x[i] = fp16_to_float(float_to_fp16(x[i]));
}
void bf16_to_float(const std::uint16_t* in, float* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_float(in[i]);
}
// float_to_bf16 without its branch, so that the loop vectorises (the bf16 products round
// every operand through here).
ANE_SIMD_CLONES void float_to_bf16(const float* in, std::uint16_t* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t x = std::bit_cast<std::uint32_t>(in[i]);
        const std::uint32_t rounded = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
        const std::uint32_t quiet_nan = (x >> 16) | 0x40u;
        out[i] = static_cast<std::uint16_t>((x & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
    }
}

}  // namespace ane
