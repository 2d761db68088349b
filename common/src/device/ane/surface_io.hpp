#pragma once
// Moving data between the model's token-major fp32 tensors and the ANE's channel-major fp16
// surfaces (spec/ane.md §2): element (c, s) of a surface with rows of `row` values is at
// c·row + s. `offset` selects a region of every row (activations, then weights).
#include <cstdint>
#include <vector>

namespace ane::surface {

// dst[c·row + offset + t] = X[t·ld + c] for t < S, c < C.
void write_tokens(std::uint16_t* dst, int row, int offset, const float* X, int S, int C, int ld,
                  std::vector<float>& scratch);
// dst[c·row + offset + o] = W[o·in + c]: Wᵀ, what the forward kernels multiply by.
void write_transposed(std::uint16_t* dst, int row, int offset, const float* W, int out, int in,
                      std::vector<float>& scratch);
// dst[c·row + offset + j] = W[c·cols + j]: W itself, for the input-gradient kernels.
void write_rows(std::uint16_t* dst, int row, int offset, const float* W, int rows, int cols);
// Y[t·ld + c] = alpha · src[(c0 + c)·S + t] + beta · Y[t·ld + c] for t < S, c < C.
void read_tokens(const std::uint16_t* src, int S, int c0, int C, float* Y, int ld, float alpha, float beta,
                 std::vector<float>& scratch);

}  // namespace ane::surface
