#pragma once
// ANE_SIMD_CLONES before a function compiles it three times, for AVX-512 (x86-64-v4), AVX2 +
// FMA (x86-64-v3) and baseline x86-64, and the loader picks one from the CPU it runs on (an
// ifunc resolver, GCC and Clang function multi-versioning). The library is built for
// baseline x86-64 so that one binary runs everywhere; without this its plain loops (the
// elementwise kernels, the optimizer) vectorise to 4-wide SSE only. Put it on a function
// whose loops are the hot part, called per row or per block, not per element: the call goes
// through a pointer.
#if defined(__x86_64__) && defined(__ELF__)
#define ANE_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ANE_SIMD_CLONES
#endif
