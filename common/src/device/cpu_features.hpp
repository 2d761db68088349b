#pragma once
// What of the CPU our own kernels may use. CPU features the compilers' __builtin_cpu_supports
// does not name everywhere (clang 14 knows neither "f16c" nor "avxvnni" nor "avx512bf16") are
// read from CPUID; each needs the OS to save the AVX state, which the callers establish with
// __builtin_cpu_supports("avx2") (or "avx512f").
#include <optional>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace ane::cpu {

// The widest instructions our kernels choose: ANE_MAX_CPU_ISA = portable, avx2, avx2_vnni or
// avx512 (the default: whatever the CPU has) makes a larger CPU choose as a smaller one would,
// as OPENBLAS_CORETYPE and ONEDNN_MAX_CPU_ISA do for those libraries. The compiler's function
// clones (ANE_SIMD_CLONES: elementwise loops, the optimizer) still choose by the CPU.
enum class Isa { portable, avx2, avx2_vnni, avx512 };
std::optional<Isa> parse_isa(const std::string& text);
Isa max_isa();  // from the environment, read once; an unknown value (prepare_runtime refuses it) caps nothing
inline bool allows(Isa isa) { return isa <= max_isa(); }

#if defined(__x86_64__)

inline bool has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1u);
}

inline bool has_avx512_bf16() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return allows(Isa::avx512) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1u);
}

inline bool has_avx_vnni() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return allows(Isa::avx2_vnni) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1u);
}

// __builtin_cpu_supports("avx512f") and ("avx2"), within the cap.
inline bool has_avx512f() { return allows(Isa::avx512) && __builtin_cpu_supports("avx512f"); }
inline bool has_avx2() { return allows(Isa::avx2) && __builtin_cpu_supports("avx2"); }

#endif

}  // namespace ane::cpu
