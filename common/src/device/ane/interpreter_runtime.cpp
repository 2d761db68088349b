// The `ane-sim` runtime: every kernel on mil::Interpreter, surfaces in host memory.
#include <vector>

#include "kernel_runtime.hpp"
#include "ane/half.hpp"
#include "ane/mil/interpreter.hpp"

namespace ane {

namespace {

class HostSurface final : public Surface {
public:
    explicit HostSurface(std::size_t elements) : data_(elements, 0) {}
    std::uint16_t* lock(bool) override { return data_.data(); }
    void unlock(bool) override {}
    std::uint16_t* data() { return data_.data(); }

private:
    std::vector<std::uint16_t> data_;
};

class HostInput final : public BoundInput {
public:
    explicit HostInput(std::size_t elements) : surface_(elements) {}
    Surface& surface() override { return surface_; }
    HostSurface surface_;
};

class InterpretedProgram final : public CompiledProgram {
public:
    InterpretedProgram(mil::Program parsed, mil::InterpreterOptions options)
        : program_(std::move(parsed), options), output_(std::size_t(program_.output_type().numel())) {}

    std::unique_ptr<BoundInput> bind_input(const std::string&) override {
        return std::make_unique<HostInput>(std::size_t(program_.input_type().numel()));
    }
    Surface& output() override { return output_; }
    void evaluate(BoundInput& input) override {
        program_.run(static_cast<HostInput&>(input).surface_.data(), output_.data());
    }

private:
    mil::Interpreter program_;
    HostSurface output_;
};

class InterpreterRuntime final : public KernelRuntime {
public:
    explicit InterpreterRuntime(bool fp16_accumulate) { options_.fp16_accumulate = fp16_accumulate; }
    std::string name() const override { return "ane-sim"; }
    std::string describe() const override {
        return std::string("MIL programs on an fp16 interpreter (") + fp16_conversion_isa() + " conversions, " +
               (options_.fp16_accumulate ? "fp16" : "fp32") + " accumulation)";
    }
    std::unique_ptr<CompiledProgram> compile(const mil::Kernel&, mil::Program parsed) override {
        ++compiles_;
        return std::make_unique<InterpretedProgram>(std::move(parsed), options_);
    }
    int process_compiles() const override { return compiles_; }

private:
    mil::InterpreterOptions options_;
    int compiles_ = 0;
};

}  // namespace

std::unique_ptr<KernelRuntime> make_interpreter_runtime(bool fp16_accumulate) {
    return std::make_unique<InterpreterRuntime>(fp16_accumulate);
}

}  // namespace ane
