#include "ane/runtime.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "device/cpu_features.hpp"

namespace ane {

void prepare_runtime(int, char** argv) {
    if (const char* isa = std::getenv("ANE_MAX_CPU_ISA"); isa && !cpu::parse_isa(isa)) {
        const char* slash = std::strrchr(argv[0], '/');
        std::fprintf(stderr, "%s: ANE_MAX_CPU_ISA=%s: unknown instruction set (portable, avx2, avx2_vnni or avx512)\n",
                     slash ? slash + 1 : argv[0], isa);
        std::exit(1);
    }
    if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
    ::setenv("OMP_WAIT_POLICY", "passive", 1);
    ::execv("/proc/self/exe", argv);
    // exec failed (no /proc): carry on with the default policy.
}

}  // namespace ane
