#pragma once
// Rademacher z drawn sixteen stretches of one xoshiro256+ stream at a time, side by side in
// vector registers (AVX-512, else AVX2, chosen at run time): a single generator's draws depend
// on each other, so one stream at a time leaves the vector units idle.
#include <cstdint>

#include "ane/mezo/xoshiro.hpp"

namespace ane {

constexpr int kNibbleLanes = 16;

// Fills `words` words from out[j · words] for each stretch j < kNibbleLanes: draw d of a stretch
// gives bits 4(d mod 16) .. 4(d mod 16) + 3 of its word d / 16 (perturb_rademacher's order)
// from its bits 0..3. lanes[j] is at stretch j's first draw, and ends after its last.
using NibbleLanes = void (*)(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out);

// The vector version for this CPU, or nullptr (an x86-64 without AVX2).
NibbleLanes best_nibble_lanes();

}  // namespace ane
