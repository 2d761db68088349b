#include "ane/mezo/perturb.hpp"

#include <bit>
#include <cmath>
#include <numbers>

#include "ane/error.hpp"

namespace ane {

std::pair<float, float> Xoshiro256Plus::gaussian_pair() {
    const double u1 = (double(next() >> 11) + 0.5) / 9007199254740992.0;
    const double u2 = (double(next() >> 11) + 0.5) / 9007199254740992.0;
    const double rho = std::sqrt(-2.0 * std::log(u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    return {float(rho * std::cos(theta)), float(rho * std::sin(theta))};
}

Direction parse_direction(const std::string& name) {
    if (name == "rademacher") return Direction::Rademacher;
    if (name == "gaussian") return Direction::Gaussian;
    throw error("unknown perturbation distribution '", name, "' (rademacher or gaussian)");
}

void perturb_rademacher(float* buf, std::int64_t n, float c, Xoshiro256Plus& rng) {
    // A clear bit means -c: c with its sign bit flipped, which is exactly the float negation.
    const std::uint32_t plus = std::bit_cast<std::uint32_t>(c);
    auto signed_c = [plus](std::uint64_t bit) { return std::bit_cast<float>(plus ^ (std::uint32_t(bit ^ 1u) << 31)); };
    // The four values a draw's bits 0..3 add, for all 16 patterns: one vector add per draw.
    alignas(16) float table[16][4];
    for (int p = 0; p < 16; ++p)
        for (int j = 0; j < 4; ++j) table[p][j] = signed_c((unsigned(p) >> j) & 1u);
    std::int64_t i = 0;
    for (; i + 3 < n; i += 4) {
        const float* add = table[rng.next() & 15u];
        for (int j = 0; j < 4; ++j) buf[i + j] += add[j];
    }
    for (; i < n; ++i) buf[i] += signed_c(rng.next() & 1u);
}

void perturb_gaussian(float* buf, std::int64_t n, float c, Xoshiro256Plus& rng) {
    for (std::int64_t i = 0; i < n; i += 2) {
        const auto [z0, z1] = rng.gaussian_pair();
        buf[i] += c * z0;
        if (i + 1 < n) buf[i + 1] += c * z1;
    }
}

void perturb(const std::vector<ParamSpan>& params, std::uint64_t seed, float c, Direction direction) {
    Xoshiro256Plus rng(seed);
    for (const auto& p : params) {
        if (direction == Direction::Rademacher)
            perturb_rademacher(p.data, p.size, c, rng);
        else
            perturb_gaussian(p.data, p.size, c, rng);
    }
}

std::int64_t total_size(const std::vector<ParamSpan>& params) {
    std::int64_t n = 0;
    for (const auto& p : params) n += p.size;
    return n;
}

}  // namespace ane
