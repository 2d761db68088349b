#include "surface_io.hpp"

#include "ane/half.hpp"

namespace ane::surface {

void write_tokens(std::uint16_t* dst, int row, int offset, const float* X, int S, int C, int ld,
                  std::vector<float>& scratch) {
    scratch.resize(std::size_t(S) * std::size_t(C));
    for (int c = 0; c < C; ++c)
        for (int t = 0; t < S; ++t) scratch[std::size_t(c) * std::size_t(S) + std::size_t(t)] = X[std::int64_t(t) * ld + c];
    for (int c = 0; c < C; ++c)
        float_to_fp16(scratch.data() + std::size_t(c) * std::size_t(S), dst + std::int64_t(c) * row + offset, std::size_t(S));
}

void write_transposed(std::uint16_t* dst, int row, int offset, const float* W, int out, int in,
                      std::vector<float>& scratch) {
    scratch.resize(std::size_t(out));
    for (int c = 0; c < in; ++c) {
        for (int o = 0; o < out; ++o) scratch[std::size_t(o)] = W[std::int64_t(o) * in + c];
        float_to_fp16(scratch.data(), dst + std::int64_t(c) * row + offset, std::size_t(out));
    }
}

void write_rows(std::uint16_t* dst, int row, int offset, const float* W, int rows, int cols) {
    for (int c = 0; c < rows; ++c)
        float_to_fp16(W + std::int64_t(c) * cols, dst + std::int64_t(c) * row + offset, std::size_t(cols));
}

void read_tokens(const std::uint16_t* src, int S, int c0, int C, float* Y, int ld, float alpha, float beta,
                 std::vector<float>& scratch) {
    scratch.resize(std::size_t(S) * std::size_t(C));
    fp16_to_float(src + std::int64_t(c0) * S, scratch.data(), scratch.size());
    for (int t = 0; t < S; ++t) {
        float* y = Y + std::int64_t(t) * ld;
        if (beta == 0.0f)
            for (int c = 0; c < C; ++c) y[c] = alpha * scratch[std::size_t(c) * std::size_t(S) + std::size_t(t)];
        else
            for (int c = 0; c < C; ++c)
                y[c] = alpha * scratch[std::size_t(c) * std::size_t(S) + std::size_t(t)] + beta * y[c];
    }
}

}  // namespace ane::surface
