#include "ane/mezo/perturb.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <numbers>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../device/cpu_features.hpp"
#include "ane/error.hpp"
#include "ane/mezo/nibble_lanes.hpp"
#include "ane/mezo/xoshiro_jump.hpp"

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

void decay(const std::vector<ParamSpan>& params, float lr_times_wd) {
    if (lr_times_wd == 0.0f) return;
    const float keep = 1.0f - lr_times_wd;
    for (const auto& p : params)
        if (p.decay)
            for (std::int64_t i = 0; i < p.size; ++i) p.data[i] *= keep;
}

void StepDirection::draw(const std::vector<ParamSpan>& params, std::uint64_t seed, Direction direction) {
    params_ = params;
    seed_ = seed;
    direction_ = direction;
    if (direction != Direction::Rademacher) return;
    offsets_.clear();
    index_.clear();
    std::int64_t total = 0;
    for (const auto& p : params) {
        index_.emplace(p.data, offsets_.size());
        offsets_.push_back(total);
        total += p.size;
    }
    bits_.assign(std::size_t((total + 63) / 64), 0);
    // The stream perturb_rademacher reads: per buffer one draw's bits 0..3 for each four
    // elements, then one draw's bit 0 for each leftover. Drawn in parts on all threads, each
    // part's generator jumped to its first draw.
    struct Part {
        std::size_t buffer;
        std::int64_t begin, end;  // elements
        std::uint64_t first_draw;
        bool leftovers;  // the last n % 4 elements of a buffer: one draw each
        std::int64_t lane_words = 0;  // words of each of kNibbleLanes stretches drawn side by side
    };
    constexpr std::int64_t kPart = 1 << 21;  // elements, a multiple of 64; a jump costs ~30 µs
    static const NibbleLanes draw_lanes = best_nibble_lanes();
    std::vector<Part> parts;
    std::uint64_t draws = 0;
    for (std::size_t b = 0; b < params.size(); ++b) {
        const std::int64_t n = params[b].size, whole = n / 4 * 4;
        for (std::int64_t i = 0; i < whole; i += kPart) {
            Part part{b, i, std::min(whole, i + kPart), draws + std::uint64_t(i / 4), false};
            const std::int64_t g = offsets_[b] + i;
            if (draw_lanes && (g & 3) == 0) {  // the whole words after the nibbles up to a word boundary
                const std::int64_t words = (part.end - i - ((64 - (g & 63)) & 63)) / 64;
                part.lane_words = words >= 4 * kNibbleLanes ? words / kNibbleLanes : 0;
                if (part.lane_words) jumps_.try_emplace(std::uint64_t(part.lane_words) * 16, part.lane_words * 16);
            }
            if (part.first_draw) jumps_.try_emplace(part.first_draw, part.first_draw);
            parts.push_back(part);
        }
        draws += std::uint64_t(whole / 4);
        if (whole < n) {
            parts.push_back({b, whole, n, draws, true});
            if (draws) jumps_.try_emplace(draws, draws);
        }
        draws += std::uint64_t(n - whole);
    }
    // Words shared with a neighbouring part are or-ed atomically; whole words are stored.
    auto merge = [this](std::int64_t g, std::uint64_t v, int width) {
        const int shift = int(g & 63);
        std::atomic_ref<std::uint64_t>(bits_[std::size_t(g >> 6)]).fetch_or(v << shift, std::memory_order_relaxed);
        if (shift + width > 64)
            std::atomic_ref<std::uint64_t>(bits_[std::size_t(g >> 6) + 1])
                .fetch_or(v >> (64 - shift), std::memory_order_relaxed);
    };
#pragma omp parallel for schedule(dynamic) if (parts.size() > 1)
    for (std::size_t k = 0; k < parts.size(); ++k) {
        const Part& part = parts[k];
        Xoshiro256Plus rng(seed);
        if (part.first_draw) jumps_.at(part.first_draw).apply(rng);
        const std::int64_t g0 = offsets_[part.buffer];
        std::int64_t i = part.begin;
        if (part.leftovers) {
            for (; i < part.end; ++i) merge(g0 + i, rng.next() & 1u, 1);
            continue;
        }
        if (((g0 + i) & 3) == 0) {  // nibbles on the word grid: whole words where the part covers them
            for (; i < part.end && ((g0 + i) & 63) != 0; i += 4) merge(g0 + i, rng.next() & 15u, 4);
            if (part.lane_words) {  // each stretch's generator jumped from the one before
                const XoshiroJump& stretch = jumps_.at(std::uint64_t(part.lane_words) * 16);
                Xoshiro256Plus lanes[kNibbleLanes];
                lanes[0] = rng;
                for (int j = 1; j < kNibbleLanes; ++j) {
                    lanes[j] = lanes[j - 1];
                    stretch.apply(lanes[j]);
                }
                draw_lanes(lanes, part.lane_words, bits_.data() + ((g0 + i) >> 6));
                rng = lanes[kNibbleLanes - 1];
                i += 64 * kNibbleLanes * part.lane_words;
            }
            for (; i + 64 <= part.end; i += 64) {
                std::uint64_t word = 0;
                for (int j = 0; j < 16; ++j) word |= (rng.next() & 15u) << (4 * j);
                bits_[std::size_t((g0 + i) >> 6)] = word;
            }
        }
        for (; i < part.end; i += 4) merge(g0 + i, rng.next() & 15u, 4);
    }
}

template <class Fn>
void StepDirection::for_ranges(Fn fn) const {
    // Chunks shared out across the threads; each is walked in blocks whose z is laid out as
    // ±1.0f first, so that the arithmetic runs on whole vectors (c·(±1) is exactly ±c).
    constexpr std::int64_t kChunk = 1 << 16, kBlock = 2048;
    for (std::size_t b = 0; b < params_.size(); ++b) {
        const std::int64_t n = params_[b].size;
#pragma omp parallel for schedule(static) if (n >= 2 * kChunk)
        for (std::int64_t begin = 0; begin < n; begin += kChunk) {
            alignas(64) float z[kBlock];
            for (std::int64_t i = begin; i < std::min(n, begin + kChunk); i += kBlock) {
                const std::int64_t m = std::min({kBlock, n - i, begin + kChunk - i});
                signs(offsets_[b] + i, m, z);
                fn(params_[b], params_[b].data + i, z, m, offsets_[b] + i);
            }
        }
    }
}

namespace {
// The eight z of a byte of bits, as floats: [pattern][j] = bit j set ? +1 : -1.
const std::array<std::array<float, 8>, 256>& byte_signs() {
    static const auto table = [] {
        std::array<std::array<float, 8>, 256> t{};
        for (int p = 0; p < 256; ++p)
            for (int j = 0; j < 8; ++j) t[std::size_t(p)][std::size_t(j)] = (p >> j) & 1 ? 1.0f : -1.0f;
        return t;
    }();
    return table;
}

// Bit e of a bit array (bit 0 of word 0 first): z_e = +1 when set.
bool bit_set(const std::uint64_t* bits, std::int64_t e) { return (bits[std::size_t(e >> 6)] >> (e & 63)) & 1u; }
}  // namespace

void StepDirection::signs(std::int64_t g, std::int64_t n, float* z) const {
    const auto bit = [&](std::int64_t e) { return bit_set(bits_.data(), e) ? 1.0f : -1.0f; };
    std::int64_t k = 0;
    for (; k < n && ((g + k) & 7) != 0; ++k) z[k] = bit(g + k);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(bits_.data());  // little-endian words
    for (; k + 8 <= n; k += 8) std::memcpy(z + k, byte_signs()[bytes[(g + k) >> 3]].data(), 8 * sizeof(float));
    for (; k < n; ++k) z[k] = bit(g + k);
}

void StepDirection::apply(float c, float* save) const {
    if (direction_ != Direction::Rademacher) {
        for (const auto& p : params_) save = save ? std::copy_n(p.data, p.size, save) : nullptr;
        return perturb(params_, seed_, c, direction_);
    }
    for_ranges([&](const ParamSpan&, float* x, const float* z, std::int64_t m, std::int64_t g) {
        if (save) std::copy(x, x + m, save + g);
        for (std::int64_t i = 0; i < m; ++i) x[i] += c * z[i];
    });
}

void StepDirection::restore_and_update(float c, float coeff, float lr_times_wd) const {
    if (direction_ != Direction::Rademacher) {
        perturb(params_, seed_, c, direction_);
        if (coeff == 0.0f && lr_times_wd == 0.0f) return;
        decay(params_, lr_times_wd);
        return perturb(params_, seed_, coeff, direction_);
    }
    for_ranges([&](const ParamSpan& p, float* x, const float* z, std::int64_t m, std::int64_t) {
        if (coeff == 0.0f && lr_times_wd == 0.0f) {  // a skipped update: the restore alone
            for (std::int64_t i = 0; i < m; ++i) x[i] += c * z[i];
        } else if (lr_times_wd != 0.0f && p.decay) {
            const float keep = 1.0f - lr_times_wd;
            for (std::int64_t i = 0; i < m; ++i) x[i] = (x[i] + c * z[i]) * keep + coeff * z[i];
        } else {
            for (std::int64_t i = 0; i < m; ++i) x[i] = (x[i] + c * z[i]) + coeff * z[i];
        }
    });
}

void StepDirection::update_from(const float* saved, float coeff, float lr_times_wd) const {
    if (direction_ != Direction::Rademacher) {
        for (const auto& p : params_) {
            std::copy_n(saved, p.size, p.data);
            saved += p.size;
        }
        if (coeff == 0.0f && lr_times_wd == 0.0f) return;
        decay(params_, lr_times_wd);
        return perturb(params_, seed_, coeff, direction_);
    }
    for_ranges([&](const ParamSpan& p, float* x, const float* z, std::int64_t m, std::int64_t g) {
        const float* s0 = saved + g;  // the snapshot lays the buffers out as the bit array does
        const float keep = lr_times_wd != 0.0f && p.decay ? 1.0f - lr_times_wd : 1.0f;
        if (coeff == 0.0f && lr_times_wd == 0.0f)  // a skipped update: the restore alone
            std::copy(s0, s0 + m, x);
        else
            for (std::int64_t i = 0; i < m; ++i) x[i] = s0[i] * keep + coeff * z[i];
    });
}

std::int64_t StepDirection::index_of(const float* data, std::int64_t n) const {
    const auto it = index_.find(data);
    if (it == index_.end() || params_[it->second].size != n) return -1;
    return std::int64_t(it->second);
}

namespace {
// One run of a signed sweep: y = (x ± r)·keep ± u (the signs from bit i of `ub`; without `ub`,
// y = x), stored to x_out, then out = y ± c (bit i of `cb`). Bit 0 of ub[0] and cb[0] goes with
// x[0]; n a multiple of the vector width. c·(±1) is exactly ±c, so this is (x + r·z)·keep + u·z.
// r = 0 skips its addition (x + 0 would turn −0 into +0).
struct SweepRun {
    const float* x;
    const std::uint8_t* ub;
    float r, keep, u;
    float* x_out;
    const std::uint8_t* cb;
    float c;
    float* out;
};

#if defined(__x86_64__)
__attribute__((target("avx512f"))) void sweep_avx512(const SweepRun& r, std::int64_t n) {
    const __m512 keep = _mm512_set1_ps(r.keep), pu = _mm512_set1_ps(r.u), mu = _mm512_set1_ps(-r.u);
    const __m512 pr = _mm512_set1_ps(r.r), mr = _mm512_set1_ps(-r.r);
    const __m512 pc = _mm512_set1_ps(r.c), mc = _mm512_set1_ps(-r.c);
    for (std::int64_t i = 0; i < n; i += 16) {
        __m512 y = _mm512_loadu_ps(r.x + i);
        if (r.ub) {
            std::uint16_t m;
            std::memcpy(&m, r.ub + i / 8, sizeof(m));
            if (r.r != 0.0f) y = _mm512_add_ps(y, _mm512_mask_blend_ps(__mmask16(m), mr, pr));
            y = _mm512_add_ps(_mm512_mul_ps(y, keep), _mm512_mask_blend_ps(__mmask16(m), mu, pu));
        }
        if (r.x_out) _mm512_storeu_ps(r.x_out + i, y);
        if (r.out) {
            std::uint16_t m;
            std::memcpy(&m, r.cb + i / 8, sizeof(m));
            _mm512_storeu_ps(r.out + i, _mm512_add_ps(y, _mm512_mask_blend_ps(__mmask16(m), mc, pc)));
        }
    }
}

__attribute__((target("avx2"))) __m256 signed_lanes(std::uint8_t bits, __m256 plus, __m256 minus) {
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i b = _mm256_and_si256(_mm256_set1_epi32(bits), lane_bit);
    return _mm256_blendv_ps(minus, plus, _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, lane_bit)));
}

__attribute__((target("avx2"))) void sweep_avx2(const SweepRun& r, std::int64_t n) {
    const __m256 keep = _mm256_set1_ps(r.keep), pu = _mm256_set1_ps(r.u), mu = _mm256_set1_ps(-r.u);
    const __m256 pr = _mm256_set1_ps(r.r), mr = _mm256_set1_ps(-r.r);
    const __m256 pc = _mm256_set1_ps(r.c), mc = _mm256_set1_ps(-r.c);
    for (std::int64_t i = 0; i < n; i += 8) {
        __m256 y = _mm256_loadu_ps(r.x + i);
        if (r.ub) {
            if (r.r != 0.0f) y = _mm256_add_ps(y, signed_lanes(r.ub[i / 8], pr, mr));
            y = _mm256_add_ps(_mm256_mul_ps(y, keep), signed_lanes(r.ub[i / 8], pu, mu));
        }
        if (r.x_out) _mm256_storeu_ps(r.x_out + i, y);
        if (r.out) _mm256_storeu_ps(r.out + i, _mm256_add_ps(y, signed_lanes(r.cb[i / 8], pc, mc)));
    }
}
#endif

// Without vector intrinsics: the signs of each eight elements from a table, in loops the
// compiler vectorizes (NEON on arm64).
void sweep_portable(const SweepRun& r, std::int64_t n) {
    const auto& table = byte_signs();
    for (std::int64_t i = 0; i < n; i += 8) {
        float y[8];
        for (int j = 0; j < 8; ++j) y[j] = r.x[i + j];
        if (r.ub) {
            const float* z = table[r.ub[i / 8]].data();
            if (r.r != 0.0f)
                for (int j = 0; j < 8; ++j) y[j] += r.r * z[j];
            for (int j = 0; j < 8; ++j) y[j] = y[j] * r.keep + r.u * z[j];
        }
        if (r.x_out)
            for (int j = 0; j < 8; ++j) r.x_out[i + j] = y[j];
        if (r.out) {
            const float* z = table[r.cb[i / 8]].data();
            for (int j = 0; j < 8; ++j) r.out[i + j] = y[j] + r.c * z[j];
        }
    }
}

using SweepKernel = void (*)(const SweepRun&, std::int64_t);

// The kernel and the elements per call it takes (a multiple of 8: runs start on a byte).
std::pair<SweepKernel, std::int64_t> sweep_kernel(SweepIsa isa) {
    switch (isa == SweepIsa::best ? best_sweep_isa() : isa) {
#if defined(__x86_64__)
        case SweepIsa::avx512: return {sweep_avx512, 16};
        case SweepIsa::avx2: return {sweep_avx2, 8};
#endif
        default: return {sweep_portable, 8};
    }
}
}  // namespace

SweepIsa best_sweep_isa() {
#if defined(__x86_64__)
    if (cpu::has_avx512f()) return SweepIsa::avx512;
    if (cpu::has_avx2()) return SweepIsa::avx2;
#endif
    return SweepIsa::portable;
}

void signed_sweep(const float* x, std::int64_t g, std::int64_t n, const SignedSweep& s) {
    require((!s.update || s.update->direction_ == Direction::Rademacher) &&
                (!s.view || s.view->direction_ == Direction::Rademacher),
            "a signed sweep needs Rademacher z");
    static const auto best = sweep_kernel(SweepIsa::best);
    const auto kernel = s.isa == SweepIsa::best ? best : sweep_kernel(s.isa);
    const SweepKernel sweep_run = kernel.first;  // not structured bindings: clang 14's OpenMP cannot capture them
    const std::int64_t width = kernel.second;
    const std::uint64_t* ubits = s.update ? s.update->bits_.data() : nullptr;
    const std::uint64_t* cbits = s.view ? s.view->bits_.data() : nullptr;
    const auto one = [&](std::int64_t i) {
        const std::int64_t e = g + i;
        float y = x[i];
        if (ubits) {
            const bool up = bit_set(ubits, e);
            if (s.restore != 0.0f) y += up ? s.restore : -s.restore;
            y = y * s.keep + (up ? s.coeff : -s.coeff);
        }
        if (s.x_out) s.x_out[i] = y;
        if (s.out) s.out[i] = y + (bit_set(cbits, e) ? s.c : -s.c);
    };
    const auto bytes = [](const std::uint64_t* bits, std::int64_t e) {  // little-endian words
        return bits ? reinterpret_cast<const std::uint8_t*>(bits) + (e >> 3) : nullptr;
    };
    constexpr std::int64_t kChunk = 1 << 15;
#pragma omp parallel for schedule(static) if (n >= 2 * kChunk)
    for (std::int64_t begin = 0; begin < n; begin += kChunk) {
        const std::int64_t end = std::min(n, begin + kChunk);
        std::int64_t i = begin;
        for (; i < end && ((g + i) & 7) != 0; ++i) one(i);
        const std::int64_t run = (end - i) / width * width;
        const SweepRun r{x + i,
                         bytes(ubits, g + i),
                         s.restore,
                         s.keep,
                         s.coeff,
                         s.x_out ? s.x_out + i : nullptr,
                         bytes(cbits, g + i),
                         s.c,
                         s.out ? s.out + i : nullptr};
        sweep_run(r, run);
        i += run;
        for (; i < end; ++i) one(i);
    }
}

}  // namespace ane
