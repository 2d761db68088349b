#pragma once
// CPU features the compilers' __builtin_cpu_supports does not name everywhere (clang 14 knows
// neither "f16c" nor "avxvnni" nor "avx512bf16"), read from CPUID. Each needs the OS to save the
// AVX state, which the callers establish with __builtin_cpu_supports("avx2") (or "avx512f").
#if defined(__x86_64__)
#include <cpuid.h>

namespace ane::cpu {

inline bool has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1u);
}

inline bool has_avx512_bf16() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1u);
}

inline bool has_avx_vnni() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1u);
}

}  // namespace ane::cpu
#endif
