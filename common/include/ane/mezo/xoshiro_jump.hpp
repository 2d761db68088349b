#pragma once
// Jumping a xoshiro256+ stream ahead by any number of draws without drawing them, so that
// the threads can each draw their own part of one sequential stream. The state update is
// linear over GF(2): k steps are x^k taken modulo the update's characteristic polynomial,
// then applied as a sum of the first 256 states.
#include <cstdint>

#include "ane/mezo/xoshiro.hpp"

namespace ane {

// Leaves `rng` where `k` calls of next() would have left it.
void jump_ahead(Xoshiro256Plus& rng, std::uint64_t k);

}  // namespace ane
