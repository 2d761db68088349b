#include "ane/mezo/nibble_lanes.hpp"

namespace ane {

namespace {

using Lanes = std::uint64_t __attribute__((vector_size(64)));  // eight generators' words

// One step of eight generators: their outputs' bits 0..3 or-ed into `word` at `shift`.
[[gnu::always_inline]] inline void step(Lanes (&s)[4], Lanes& word, int shift) {
    word |= ((s[0] + s[3]) & 15u) << shift;
    xoshiro256_advance(s);
}

// One group of eight, alone: with AVX2 a group's state and word take ten of the sixteen
// registers, and two groups interleaved spill (stories110M's z: 48-60 -> 15 ms at 2 threads, Zen 3).
[[gnu::always_inline]] inline void draw_group(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out) {
    Lanes a[4];
    for (int j = 0; j < 8; ++j)
        for (int w = 0; w < 4; ++w) a[w][j] = lanes[j].state()[w];
    for (std::int64_t k = 0; k < words; ++k) {
        Lanes word = {};
        for (int d = 0; d < 16; ++d) step(a, word, 4 * d);
        for (int j = 0; j < 8; ++j) out[j * words + k] = word[j];
    }
    for (int j = 0; j < 8; ++j) {
        const std::uint64_t state[4] = {a[0][j], a[1][j], a[2][j], a[3][j]};
        lanes[j].set_state(state);
    }
}

// Written once with GCC's generic vectors; each caller's target decides the registers. Two
// groups of eight, interleaved: one group's steps form a chain of dependent instructions.
[[gnu::always_inline]] inline void draw_lanes(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out) {
    Lanes a[4], b[4];
    for (int j = 0; j < 8; ++j)
        for (int w = 0; w < 4; ++w) {
            a[w][j] = lanes[j].state()[w];
            b[w][j] = lanes[j + 8].state()[w];
        }
    for (std::int64_t k = 0; k < words; ++k) {
        Lanes word_a = {}, word_b = {};
        for (int d = 0; d < 16; ++d) {
            step(a, word_a, 4 * d);
            step(b, word_b, 4 * d);
        }
        for (int j = 0; j < 8; ++j) {
            out[j * words + k] = word_a[j];
            out[(j + 8) * words + k] = word_b[j];
        }
    }
    for (int j = 0; j < 8; ++j) {
        const std::uint64_t state_a[4] = {a[0][j], a[1][j], a[2][j], a[3][j]};
        const std::uint64_t state_b[4] = {b[0][j], b[1][j], b[2][j], b[3][j]};
        lanes[j].set_state(state_a);
        lanes[j + 8].set_state(state_b);
    }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void draw_lanes_avx512(Xoshiro256Plus* lanes, std::int64_t words,
                                                          std::uint64_t* out) {
    draw_lanes(lanes, words, out);
}
__attribute__((target("avx2"))) void draw_lanes_avx2(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out) {
    draw_group(lanes, words, out);
    draw_group(lanes + 8, words, out + 8 * words);
}
#else
void draw_lanes_vector(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out) {  // NEON
    draw_lanes(lanes, words, out);
}
#endif

}  // namespace

NibbleLanes best_nibble_lanes() {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return draw_lanes_avx512;
    if (__builtin_cpu_supports("avx2")) return draw_lanes_avx2;
    return nullptr;
#else
    return draw_lanes_vector;
#endif
}

}  // namespace ane
