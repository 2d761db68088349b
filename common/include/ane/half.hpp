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

// Rounds every value to the nearest fp16 (in place, as float): what storing to fp16 and
// reading back gives. Beyond ±65504 values become ±inf, as in hardware.
void round_to_fp16(float* x, std::size_t n);
// The instructions the bulk fp16 conversions use on this CPU: "AVX-512", "F16C" or "scalar".
const char* fp16_conversion_isa();

}  // namespace ane
