#pragma once
// Runs a parsed MIL program on the CPU as the ANE would: fp16 storage (every op's result is
// rounded to fp16), products on BLAS. The accumulator of matmul, conv, reduce_sum and softmax
// is fp32 by default; with fp16_accumulate every partial sum is rounded to fp16 as well.
#include <cstdint>
#include <vector>

#include "ane/mil/program.hpp"

namespace ane::mil {

struct InterpreterOptions {
    bool fp16_accumulate = false;
};

class Interpreter {
public:
    Interpreter(Program program, InterpreterOptions options = {});
    // Holds pointers into its own program's constants: neither copied nor moved.
    Interpreter(const Interpreter&) = delete;
    Interpreter& operator=(const Interpreter&) = delete;

    // One evaluation: `input` holds the input surface (input_type().numel() fp16 values,
    // layout [1, C, 1, S] channel-major), `output` receives output_type().numel() values.
    void run(const std::uint16_t* input, std::uint16_t* output);
    // The same with float buffers (input rounded to fp16 on entry), for tests and tools.
    void run(const float* input, float* output);

    const Program& program() const { return program_; }
    const Type& input_type() const { return program_.input_type; }
    const Type& output_type() const { return program_.output_type(); }

private:
    void execute();
    void step(std::size_t k);
    const float* value(int variable) const { return ptr_[std::size_t(variable)]; }
    float* result(std::size_t k);

    Program program_;
    InterpreterOptions options_;
    std::vector<std::vector<float>> store_;  // per variable (unused for constants and reshapes)
    std::vector<const float*> ptr_;          // where each variable's values are
    std::vector<float> scratch_a_, scratch_b_;
};

// C[M,N] = A[M,K] · B[K,N] (row-major), every partial sum rounded to fp16.
void matmul_fp16_accumulate(const float* A, const float* B, int M, int N, int K, float* C);

}  // namespace ane::mil
