#pragma once
// llama2.c's legacy model file (spec/checkpoint.md §6): 7 int32 then float32 tensors grouped
// by type across layers; Q/K already interleaved.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ane/weights.hpp"

namespace ane {

// True when the 28-byte header is plausible and the file size matches it exactly.
bool looks_like_llama2c(const std::uint8_t* data, std::size_t size);
Weights read_llama2c(const std::string& path);

}  // namespace ane
