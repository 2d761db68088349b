#pragma once
// xoshiro256+ with SplitMix64 seeding, exactly as AutoANE's train_mezo draws its perturbation
// directions (spec/mezo.md §1), so that the same seed gives the same z.
#include <cstdint>
#include <utility>

namespace ane {

// The state update, for one generator's words or for vectors of several generators' words.
template <class Word>
[[gnu::always_inline]] inline void xoshiro256_advance(Word (&s)[4]) {
    const Word t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
}

class Xoshiro256Plus {
public:
    Xoshiro256Plus() { seed(0); }
    explicit Xoshiro256Plus(std::uint64_t s) { seed(s); }

    void seed(std::uint64_t s) {
        for (auto& word : s_) {
            s += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = s;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            word = z ^ (z >> 31);
        }
    }

    std::uint64_t next() {
        const std::uint64_t result = s_[0] + s_[3];
        xoshiro256_advance(s_);
        return result;
    }

    // Two standard normal values by Box-Muller from two consecutive outputs.
    std::pair<float, float> gaussian_pair();

    const std::uint64_t* state() const { return s_; }
    void set_state(const std::uint64_t (&s)[4]) {
        for (int i = 0; i < 4; ++i) s_[i] = s[i];
    }

private:
    std::uint64_t s_[4];
};

}  // namespace ane
