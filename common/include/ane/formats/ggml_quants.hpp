#pragma once
// llama.cpp's tensor encodings (ggml types) that the suite reads and writes: sizes, and
// dequantization to float32. Block layouts follow ggml's definitions.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ane::ggml {

enum class Type : std::uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

// Name as llama.cpp prints it ("Q4_K"), or "type N" for an unknown one.
std::string type_name(std::uint32_t type);
// Elements per block and bytes per block; false for types the suite cannot decode.
bool type_layout(std::uint32_t type, std::size_t& block_elems, std::size_t& block_bytes);

// Q4_K and Q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes: sub-block j's.
void scale_min_k4(int j, const std::uint8_t* q, int& scale, int& min);

// Decodes n elements (a multiple of the block size) from src into dst.
void dequantize(Type type, const std::uint8_t* src, float* dst, std::size_t n);

// Encoders for export: Q8_0 (round-to-nearest, one fp16 scale per 32) as llama.cpp's
// reference quantizer does; n a multiple of 32.
void quantize_q8_0(const float* src, std::uint8_t* dst, std::size_t n);
// Q4_0 as llama.cpp's reference quantizer: the value of largest magnitude maps to -8.
void quantize_q4_0(const float* src, std::uint8_t* dst, std::size_t n);
// F32, F16, BF16 (nearest even), Q8_0 or Q4_0; n a multiple of the type's block.
void quantize(Type type, const float* src, std::uint8_t* dst, std::size_t n);

}  // namespace ane::ggml
