#pragma once
// Jumping a xoshiro256+ stream ahead by any number of draws without drawing them, so that
// the threads can each draw their own part of one sequential stream. The state update is
// linear over GF(2): k steps are x^k taken modulo the update's characteristic polynomial,
// then applied as a sum of the first 256 states.
#include <array>
#include <cstdint>

#include "ane/mezo/xoshiro.hpp"

namespace ane {

// Leaves `rng` where `k` calls of next() would have left it.
void jump_ahead(Xoshiro256Plus& rng, std::uint64_t k);

// A jump by a fixed distance, for many generators: finding x^k costs ~30 µs, applying it to a
// generator ~0.3 µs.
class XoshiroJump {
public:
    explicit XoshiroJump(std::uint64_t k);
    void apply(Xoshiro256Plus& rng) const;

private:
    std::array<std::uint64_t, 4> coefficients_{};  // of x^0 .. x^255 in x^k mod the update's polynomial
};

}  // namespace ane
