#pragma once
// The weight files MIL's BLOBFILE constants point at (spec/ane.md §2): a 128-byte header whose
// descriptor sits at byte 64 (the offset the program names), then fp16 values row-major.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ane::mil {

constexpr std::size_t kBlobHeaderBytes = 128;
constexpr std::uint64_t kBlobDescriptorOffset = 64;

// Rounds `n` floats to fp16 behind the header.
std::vector<std::uint8_t> make_fp16_blob(const float* values, std::size_t n);

// The `elements` fp16 values of a blob whose descriptor is at `offset`, as floats. Throws
// std::runtime_error saying what is wrong (magic, sizes, offsets) for any other bytes.
std::vector<float> read_fp16_blob(const std::vector<std::uint8_t>& blob, std::uint64_t offset, std::int64_t elements);

}  // namespace ane::mil
