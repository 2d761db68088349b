#include "ane/mezo/nibble_lanes.hpp"

#include "../device/cpu_features.hpp"

namespace ane {

namespace {

using Lanes = std::uint64_t __attribute__((vector_size(64)));  // eight generators' words

// One step of eight generators: their outputs' bits 0..3 or-ed into `word` at `shift`.
[[gnu::always_inline]] inline void step(Lanes (&s)[4], Lanes& word, int shift) {
    word |= ((s[0] + s[3]) & 15u) << shift;
    xoshiro256_advance(s);
}

// G groups of eight generators (lanes[8g + j]), their steps interleaved: one group's steps form
// a chain of dependent instructions. Written once with GCC's generic vectors; each caller's
// target decides the registers. AVX-512 takes two groups at once; with AVX2 two groups' state and
// words need twenty of the sixteen registers and spill, so it takes one group at a time
// (stories110M's z at 2 threads on a Zen 3: 48-60 ms interleaved, 15 ms in turn).
template <int G>
[[gnu::always_inline]] inline void draw_groups(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out) {
    Lanes s[G][4];
    for (int g = 0; g < G; ++g)
        for (int j = 0; j < 8; ++j)
            for (int w = 0; w < 4; ++w) s[g][w][j] = lanes[8 * g + j].state()[w];
    for (std::int64_t k = 0; k < words; ++k) {
        Lanes word[G] = {};
        for (int d = 0; d < 16; ++d)
            for (int g = 0; g < G; ++g) step(s[g], word[g], 4 * d);
        for (int g = 0; g < G; ++g)
            for (int j = 0; j < 8; ++j) out[(8 * g + j) * words + k] = word[g][j];
    }
    for (int g = 0; g < G; ++g)
        for (int j = 0; j < 8; ++j) {
            const std::uint64_t state[4] = {s[g][0][j], s[g][1][j], s[g][2][j], s[g][3][j]};
            lanes[8 * g + j].set_state(state);
        }
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void draw_lanes_avx512(Xoshiro256Plus* lanes, std::int64_t words,
                                                          std::uint64_t* out) {
    draw_groups<2>(lanes, words, out);
}
__attribute__((target("avx2"))) void draw_lanes_avx2(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out) {
    draw_groups<1>(lanes, words, out);
    draw_groups<1>(lanes + 8, words, out + 8 * words);
}
#else
void draw_lanes_vector(Xoshiro256Plus* lanes, std::int64_t words, std::uint64_t* out) {  // NEON
    draw_groups<2>(lanes, words, out);
}
#endif

}  // namespace

NibbleLanes best_nibble_lanes() {
#if defined(__x86_64__)
    if (cpu::has_avx512f()) return draw_lanes_avx512;
    if (cpu::has_avx2()) return draw_lanes_avx2;
    return nullptr;
#else
    return draw_lanes_vector;
#endif
}

}  // namespace ane
