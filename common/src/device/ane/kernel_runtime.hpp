#pragma once
// Where the ANE devices' MIL kernels run: the fp16 interpreter (`ane-sim`) or Apple's private
// runtime (`ane`, spec/ane.md §1-2). Both take the same programs, blobs and [1, C, 1, S] fp16
// surfaces; the device code above them is one.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ane/mil/generators.hpp"

namespace ane {

// One fp16 surface. The host touches its values only between lock and unlock (IOSurfaceLock
// semantics: a real surface may be moved or read by the Neural Engine otherwise).
class Surface {
public:
    virtual ~Surface() = default;
    virtual std::uint16_t* lock(bool read_only) = 0;
    virtual void unlock(bool read_only) = 0;
};

class SurfaceWrite {
public:
    explicit SurfaceWrite(Surface& s) : s_(s), data_(s.lock(false)) {}
    ~SurfaceWrite() { s_.unlock(false); }
    SurfaceWrite(const SurfaceWrite&) = delete;
    SurfaceWrite& operator=(const SurfaceWrite&) = delete;
    std::uint16_t* data() const { return data_; }

private:
    Surface& s_;
    std::uint16_t* data_;
};

class SurfaceRead {
public:
    explicit SurfaceRead(Surface& s) : s_(s), data_(s.lock(true)) {}
    ~SurfaceRead() { s_.unlock(true); }
    SurfaceRead(const SurfaceRead&) = delete;
    SurfaceRead& operator=(const SurfaceRead&) = delete;
    const std::uint16_t* data() const { return data_; }

private:
    Surface& s_;
    const std::uint16_t* data_;
};

// An input surface bound to a compiled program (on the ANE: an _ANERequest), one per layer.
class BoundInput {
public:
    virtual ~BoundInput() = default;
    virtual Surface& surface() = 0;
};

// One compiled and loaded kernel; its single output surface is shared by all its inputs, so
// an output is read before the next evaluation of the same program.
class CompiledProgram {
public:
    virtual ~CompiledProgram() = default;
    // A zeroed input surface, for the kernel `name` (programs are shared by identical kernels).
    virtual std::unique_ptr<BoundInput> bind_input(const std::string& name) = 0;
    virtual Surface& output() = 0;
    virtual void evaluate(BoundInput& input) = 0;  // throws ane::Error naming the kernel
};

class KernelRuntime {
public:
    virtual ~KernelRuntime() = default;
    virtual std::string name() const = 0;  // the device's name: "ane-sim", "ane"
    virtual std::string describe() const = 0;
    // `parsed` is the kernel's program as the host parsed it (checked, typed).
    virtual std::unique_ptr<CompiledProgram> compile(const mil::Kernel& kernel, mil::Program parsed) = 0;
    // Compiles done by this process so far, and the most it may do (0: no limit).
    virtual int process_compiles() const = 0;
    virtual int compile_limit() const { return 0; }
};

std::unique_ptr<KernelRuntime> make_interpreter_runtime(bool fp16_accumulate);

// /System/Library/PrivateFrameworks/AppleNeuralEngine.framework/AppleNeuralEngine
std::string default_ane_framework_path();

// Apple's runtime from the framework at `framework_path`; throws ane::Error when it cannot be
// loaded (and always in a build without the Objective-C++ runtime).
std::unique_ptr<KernelRuntime> make_apple_runtime(const std::string& framework_path);
// Loads the framework and resolves its classes, or throws the same error.
void probe_apple_runtime(const std::string& framework_path);

}  // namespace ane
