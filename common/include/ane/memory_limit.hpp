#pragma once
// Refusing work that cannot fit before allocating for it: a window of 10^6 tokens asks for
// terabytes of attention scores, which should be a message with the numbers, not a crash.
#include <cstdint>
#include <string>

namespace ane {

// This machine's physical memory in bytes (0 when unknown).
std::uint64_t physical_memory_bytes();
// Throws an Error naming `what` and both sizes when `bytes` exceeds the physical memory.
void require_memory(double bytes, const std::string& what);

}  // namespace ane
