#pragma once
// A vectorisable exp for the softmax, cross-entropy and SiLU loops: std::exp does not
// vectorise without -ffast-math. Relative error below 2e-7 over the float range; inputs
// below -87.3 give 0, above 88.7 give +inf.
#include <bit>
#include <cstdint>

namespace ane {

#pragma omp declare simd
[[gnu::always_inline]] inline float fast_exp(float x) {
    x = x < -87.33f ? -87.33f : (x > 88.72f ? 88.72f : x);
    // exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2].
    // Adding 1.5 * 2^23 rounds to the nearest integer, which is then the low bits of the sum
    // (no float-to-int conversion, which would be undefined for a NaN x; NaN stays NaN in p).
    const float shifted = x * 1.44269504088896341f + 12582912.0f;
    const float n = shifted - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187045e-06f;
    // Degree-6 Taylor/minimax polynomial of exp(r) on the reduced range.
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const std::int32_t bits = (std::bit_cast<std::int32_t>(shifted) - 0x4B400000 + 127) << 23;
    return p * std::bit_cast<float>(bits);
}

// The largest of x[0, n) (-inf when n = 0), as a vector reduction (one accumulator would wait
// on each compare: 4 cycles per element).
[[gnu::always_inline]] inline float max_of(const float* x, int n) {
    float mx = -__builtin_inff();
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

// p[j] = exp(p[j] - mx) in place for j < n; returns their sum.
[[gnu::always_inline]] inline float exp_shifted(float* p, int n, float mx) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; ++j) {
        p[j] = fast_exp(p[j] - mx);
        sum += p[j];
    }
    return sum;
}

// The softmax's exponentials in place and the factor that normalises them:
// 1 / (Σ p + 1e-10), the spec's 1e-10 in the denominator.
[[gnu::always_inline]] inline float softmax_exp(float* p, int n, float mx) {
    return 1.0f / (exp_shifted(p, n, mx) + 1e-10f);
}

}  // namespace ane
