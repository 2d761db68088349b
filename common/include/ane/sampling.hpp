#pragma once
// Deterministic window sampling, reproducing AutoANE's offsets exactly (spec/data.md §3):
// the POSIX drand48 generator, implemented here so it does not share libc's global state.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ane {

class Drand48 {
public:
    Drand48() { seed(0); }
    explicit Drand48(long s) { seed(s); }
    // srand48: X = (s & 0xFFFFFFFF) << 16 | 0x330E.
    void seed(long s);
    // erand48-style start from a caller's three 16-bit words (xsubi[0] is the low word).
    void set_state(std::array<std::uint16_t, 3> xsubi);
    // Advances the 48-bit LCG and returns X / 2^48 in [0, 1).
    double next();
    std::uint64_t state() const { return x_; }

private:
    std::uint64_t x_ = 0;
};

// train.m: one stream seeded seed + start_step; every micro-step draws one offset
// floor(drand48() * (train_tokens - seq - 1)). A window is tokens [pos, pos + seq + 1).
class TrainWindowSampler {
public:
    TrainWindowSampler(std::size_t train_tokens, int seq, long seed, long start_step = 0);
    std::size_t next();
    // The generator's 48-bit state, saved in checkpoints so that a resumed run continues the stream.
    std::uint64_t state() const { return rng_.state(); }
    void restore(std::uint64_t state);

private:
    Drand48 rng_;
    std::size_t max_pos_;
};

// train.m validation at micro-step `step`: `count` windows from erand48 with
// xsubi = {step*7+1, step*13+3, step*17+5}, offset by val_start.
std::vector<std::size_t> train_validation_offsets(long step, std::size_t val_start, std::size_t val_tokens, int seq,
                                                  int count = 10);

// train_mezo: the window of step k is a pure function of (seed, k): srand48(seed + 7919 k).
std::size_t mezo_window_offset(long seed, long step, std::size_t train_tokens, int seq);
// `count` windows for step k: the first is mezo_window_offset's, the rest continue its stream.
std::vector<std::size_t> mezo_window_offsets(long seed, long step, std::size_t train_tokens, int seq, int count);
// train_mezo validation: srand48(999), the same `count` windows every time.
std::vector<std::size_t> mezo_validation_offsets(std::size_t val_start, std::size_t val_tokens, int seq,
                                                 int count = 10);

}  // namespace ane
