// A build without Objective-C++ (no GNUstep on Linux, or a fuzzing build): `ane` is refused
// as on a machine without the framework.
#include "kernel_runtime.hpp"
#include "ane/error.hpp"

namespace ane {

void probe_apple_runtime(const std::string& framework_path) {
    if (framework_path == default_ane_framework_path())
        throw Error("ane: AppleNeuralEngine framework not found (macOS on Apple Silicon only); use --device cpu or ane-sim");
    throw Error("ane: cannot use the framework ANE_FRAMEWORK names (" + framework_path +
                "): this build has no Objective-C++ runtime (install gobjc++ and libgnustep-base-dev, and rebuild)");
}

std::unique_ptr<KernelRuntime> make_apple_runtime(const std::string& framework_path) {
    probe_apple_runtime(framework_path);
    return nullptr;
}

}  // namespace ane
