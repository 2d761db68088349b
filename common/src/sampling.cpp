#include "ane/sampling.hpp"

#include "ane/error.hpp"

namespace ane {

namespace {
constexpr std::uint64_t kMask48 = (std::uint64_t(1) << 48) - 1;
constexpr std::uint64_t kA = 0x5DEECE66Dull;
constexpr std::uint64_t kC = 0xB;
}  // namespace

void Drand48::seed(long s) { x_ = ((std::uint64_t(s) & 0xFFFFFFFFull) << 16) | 0x330Eu; }

void Drand48::set_state(std::array<std::uint16_t, 3> xsubi) {
    x_ = std::uint64_t(xsubi[0]) | (std::uint64_t(xsubi[1]) << 16) | (std::uint64_t(xsubi[2]) << 32);
}

double Drand48::next() {
    x_ = (kA * x_ + kC) & kMask48;
    return double(x_) / double(std::uint64_t(1) << 48);
}

TrainWindowSampler::TrainWindowSampler(std::size_t train_tokens, int seq, long seed, long start_step)
    : rng_(seed + start_step) {
    require(train_tokens > std::size_t(seq) + 1, "training split has ", train_tokens,
            " tokens, fewer than one window of ", seq + 1, " plus one");
    max_pos_ = train_tokens - std::size_t(seq) - 1;
}

void TrainWindowSampler::restore(std::uint64_t st) {
    rng_.set_state({std::uint16_t(st), std::uint16_t(st >> 16), std::uint16_t(st >> 32)});
}

std::size_t TrainWindowSampler::next() { return static_cast<std::size_t>(rng_.next() * double(max_pos_)); }

std::vector<std::size_t> train_validation_offsets(long step, std::size_t val_start, std::size_t val_tokens, int seq,
                                                  int count) {
    require(val_tokens > std::size_t(seq) + 1, "validation split has ", val_tokens,
            " tokens, fewer than one window of ", seq + 1, " plus one");
    Drand48 rng;
    rng.set_state({static_cast<std::uint16_t>(step * 7 + 1), static_cast<std::uint16_t>(step * 13 + 3),
                   static_cast<std::uint16_t>(step * 17 + 5)});
    std::vector<std::size_t> out;
    const double span = double(val_tokens - std::size_t(seq) - 1);
    for (int i = 0; i < count; ++i) out.push_back(val_start + static_cast<std::size_t>(rng.next() * span));
    return out;
}

std::vector<std::size_t> mezo_window_offsets(long seed, long step, std::size_t train_tokens, int seq, int count) {
    require(train_tokens > std::size_t(seq) + 1, "training split has ", train_tokens,
            " tokens, fewer than one window of ", seq + 1, " plus one");
    Drand48 rng(seed + step * 7919);
    std::vector<std::size_t> out(static_cast<std::size_t>(count));
    for (auto& pos : out) pos = static_cast<std::size_t>(rng.next() * double(train_tokens - std::size_t(seq) - 1));
    return out;
}

std::size_t mezo_window_offset(long seed, long step, std::size_t train_tokens, int seq) {
    return mezo_window_offsets(seed, step, train_tokens, seq, 1)[0];
}

std::vector<std::size_t> mezo_validation_offsets(std::size_t val_start, std::size_t val_tokens, int seq, int count) {
    require(val_tokens > std::size_t(seq) + 1, "validation split has ", val_tokens,
            " tokens, fewer than one window of ", seq + 1, " plus one");
    Drand48 rng(999);
    std::vector<std::size_t> out;
    const double span = double(val_tokens - std::size_t(seq) - 1);
    for (int i = 0; i < count; ++i) out.push_back(val_start + static_cast<std::size_t>(rng.next() * span));
    return out;
}

}  // namespace ane
