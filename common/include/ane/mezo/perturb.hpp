#pragma once
// The perturbation sweeps of MeZO (spec/mezo.md §1-2): add c·z to every trainable buffer,
// z regenerated from a seed each time instead of stored.
#include <cstdint>
#include <string>
#include <vector>

#include "ane/mezo/xoshiro.hpp"

namespace ane {

enum class Direction { Rademacher, Gaussian };
Direction parse_direction(const std::string& name);

// One trainable buffer. `decay`: whether weight decay applies (matrices and adapters, not gains).
struct ParamSpan {
    std::string name;
    float* data = nullptr;
    std::int64_t size = 0;
    bool decay = true;
};

// buf[i] += c·z_i with z_i = ±1 from bits 0..3 of one draw per 4 elements, leftovers one draw each.
void perturb_rademacher(float* buf, std::int64_t n, float c, Xoshiro256Plus& rng);
// buf[i] += c·z_i with z_i ~ N(0, 1), in pairs; an odd tail discards the pair's second value.
void perturb_gaussian(float* buf, std::int64_t n, float c, Xoshiro256Plus& rng);

// Seeds once, then walks the buffers in order: the whole set's z is a function of `seed`.
void perturb(const std::vector<ParamSpan>& params, std::uint64_t seed, float c, Direction direction);

// The per-step seed: step · 1000003 + seed (train_mezo).
inline std::uint64_t mezo_step_seed(long seed, long step) {
    return std::uint64_t(step) * 1000003ull + std::uint64_t(seed);
}

std::int64_t total_size(const std::vector<ParamSpan>& params);

}  // namespace ane
