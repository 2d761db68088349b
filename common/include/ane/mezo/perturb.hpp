#pragma once
// The perturbation sweeps of MeZO (spec/mezo.md §1-2): add c·z to every trainable buffer,
// z regenerated from a seed each time instead of stored.
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "ane/mezo/xoshiro.hpp"
#include "ane/mezo/xoshiro_jump.hpp"

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

// θ ← θ·(1 − lr·wd) on the decaying buffers (weight decay before a zeroth-order update).
void decay(const std::vector<ParamSpan>& params, float lr_times_wd);

struct SignedSweep;

// One step's direction z(seed) over a set of buffers, drawn once and then applied as often as
// the step needs on all threads (perturb() redraws the sequential stream every time). Each
// sweep gives exactly the floats perturb() gives. Rademacher z is kept as one bit per element;
// Gaussian z is not kept (4 bytes per element) but redrawn, as perturb() does.
class StepDirection {
public:
    StepDirection() = default;
    // Draws z for `seed`; the buffers must stay where they are until the next draw.
    void draw(const std::vector<ParamSpan>& params, std::uint64_t seed, Direction direction);
    // θ += c·z; with `save`, θ is first copied there (ParamSnapshot's layout) in the same sweep.
    void apply(float c, float* save = nullptr) const;
    // θ = (θ + c·z)·keep + coeff·z, keep = 1 − lr·wd on decaying buffers (else θ + c·z + coeff·z):
    // undoing a perturbation and the update in one sweep, with the roundings of the two.
    void restore_and_update(float c, float coeff, float lr_times_wd) const;
    // θ = saved·keep + coeff·z, saved the buffers as they were before the step (ParamSnapshot's
    // layout: the buffers one after another).
    void update_from(const float* saved, float coeff, float lr_times_wd) const;

    // Rademacher only: the index of the drawn buffer at `data` holding n elements, or -1 when
    // `data` is none of them; a buffer's first element in the bit array, and the buffer.
    std::int64_t index_of(const float* data, std::int64_t n) const;
    std::int64_t offset(std::size_t buffer) const { return offsets_[buffer]; }
    const std::vector<ParamSpan>& buffers() const { return params_; }

private:
    std::vector<ParamSpan> params_;
    std::vector<std::int64_t> offsets_;  // each buffer's first element in the bit array
    std::unordered_map<const float*, std::size_t> index_;  // buffer by its first element
    std::vector<std::uint64_t> bits_;    // bit g set: z = +1 for element g
    // The jumps the draws' parts take, by distance: found once (~30 µs each), as a run's draws
    // split the same buffers into the same parts.
    std::map<std::uint64_t, XoshiroJump> jumps_;
    std::uint64_t seed_ = 0;
    Direction direction_ = Direction::Rademacher;
    // z of elements [g, g + n) of the bit array as ±1.0f.
    void signs(std::int64_t g, std::int64_t n, float* z) const;
    // Runs fn(buffer, x, z, m, g) over every block of m elements (x its first, z theirs as
    // ±1.0f, g its index in the bit array), the blocks shared out across the threads.
    template <class Fn>
    void for_ranges(Fn fn) const;
    friend void signed_sweep(const float* x, std::int64_t g, std::int64_t n, const SignedSweep& s);
};

enum class SweepIsa { best, portable, avx2, avx512 };
SweepIsa best_sweep_isa();  // the widest this CPU runs: avx512, avx2 or portable

// One pass over elements [g, g + n) of the bit arrays of `update` and `view`, two directions
// drawn over the same buffers (Rademacher; either may be absent): y = (x + restore·z_update)·keep
// + coeff·z_update (y = x without `update`; restore 0 adds nothing), stored to x_out when given;
// out = y + c·z_view when given (out may be x). Each operation rounded on its own, as the other
// sweeps (no fused multiply-add); on all threads when n is large.
// MeZO's deferred update fused into the next step's first sweep: a view (out = θ + c·z), or the
// perturbation in place (out = x) that also undoes the step before's.
struct SignedSweep {
    const StepDirection* update = nullptr;
    float restore = 0.0f, keep = 1.0f, coeff = 0.0f;
    float* x_out = nullptr;
    const StepDirection* view = nullptr;
    float c = 0.0f;
    float* out = nullptr;
    SweepIsa isa = SweepIsa::best;  // the tests name each kernel this CPU runs
};
void signed_sweep(const float* x, std::int64_t g, std::int64_t n, const SignedSweep& s);

}  // namespace ane
