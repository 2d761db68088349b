#pragma once
// IEEE binary16 and bfloat16 conversions, round-to-nearest-even, NaN kept NaN.
#include <cstddef>
#include <cstdint>

namespace ane {

float fp16_to_float(std::uint16_t h);
std::uint16_t float_to_fp16(float f);
float bf16_to_float(std::uint16_t b);
std::uint16_t float_to_bf16(float f);

void fp16_to_float(const std::uint16_t* in, float* out, std::size_t n);
void float_to_fp16(const float* in, std::uint16_t* out, std::size_t n);
void bf16_to_float(const std::uint16_t* in, float* out, std::size_t n);
void float_to_bf16(const float* in, std::uint16_t* out, std::size_t n);

}  // namespace ane
