#pragma once
// Horizontal sums of vector registers for the kernels that choose their instruction set at
// run time (each function carries its own target). GCC 12's _mm512_reduce_add_ps warns of an
// uninitialised variable inside its own header, hence the store.
#if defined(__x86_64__)
#include <immintrin.h>

namespace ane::simd {

__attribute__((target("avx512f"))) inline float hsum512(__m512 v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    float s = 0.0f;
    for (float l : lanes) s += l;
    return s;
}

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

}  // namespace ane::simd
#endif
