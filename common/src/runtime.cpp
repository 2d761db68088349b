#include "ane/runtime.hpp"

#include <unistd.h>

#include <cstdlib>

namespace ane {

void prepare_runtime(int, char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
    ::setenv("OMP_WAIT_POLICY", "passive", 1);
    ::execv("/proc/self/exe", argv);
    // exec failed (no /proc): carry on with the default policy.
}

}  // namespace ane
