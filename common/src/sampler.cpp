#include "ane/sampler.hpp"

#include <algorithm>
#include <cmath>

#include "ane/error.hpp"

namespace ane {

Sampler::Sampler(const SamplerConfig& config, int vocab) : cfg_(config), vocab_(vocab), state_(config.seed) {
    require(vocab >= 1, "sampler: empty vocabulary");
    require(cfg_.temperature >= 0, "--temperature must not be negative");
    require(cfg_.top_k >= 0, "--top-k must not be negative");
    require(cfg_.repeat_penalty > 0, "--repeat-penalty must be positive");
}

float Sampler::next_uniform() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    const auto u32 = static_cast<std::uint32_t>((state_ * 0x2545F4914F6CDD1Dull) >> 32);
    return float(u32 >> 8) / 16777216.0f;
}

void Sampler::penalize(const float* logits, std::span<const std::int32_t> history) {
    work_.assign(logits, logits + vocab_);
    if (cfg_.repeat_penalty != 1.0f) {
        const std::size_t from = history.size() > std::size_t(cfg_.repeat_window)
                                     ? history.size() - std::size_t(cfg_.repeat_window) : 0;
        std::vector<char> seen(static_cast<std::size_t>(vocab_), 0);
        for (std::size_t i = from; i < history.size(); ++i) {
            const int id = history[i];
            if (id < 0 || id >= vocab_ || seen[std::size_t(id)]) continue;
            seen[std::size_t(id)] = 1;
            float& z = work_[std::size_t(id)];
            z = z > 0 ? z / cfg_.repeat_penalty : z * cfg_.repeat_penalty;
        }
    }
}

namespace {

// The index of the largest value (the first of equals; NaNs never win): the greedy choice.
// In two passes a compiler can keep 16 running maxima in registers, where std::max_element
// reloads its best through a pointer each step (21% of a stories15M Q4_0 decoding profile).
int argmax(const float* z, int n) {
    constexpr int kLanes = 16;
    float lanes[kLanes];
    std::fill(lanes, lanes + kLanes, -INFINITY);
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) lanes[j] = z[i + j] > lanes[j] ? z[i + j] : lanes[j];
    float best = -INFINITY;
    for (int j = 0; j < kLanes; ++j) best = lanes[j] > best ? lanes[j] : best;
    for (; i < n; ++i) best = z[i] > best ? z[i] : best;
    for (i = 0; i < n; ++i)
        if (z[i] == best) return i;
    return 0;  // every value NaN or -inf
}

// The ids of the k largest values, largest first (equal values: lower id first), in one pass
// that compares each value with the k-th best so far: on a vocabulary of logits all but a few
// hundred fail that test, where sorting or softmax over all of them would touch each many times.
std::vector<int> top_k_ids(const float* z, int n, int k) {
    std::vector<std::pair<float, int>> best;  // sorted: value descending, then id ascending
    best.reserve(std::size_t(k) + 1);
    const auto before = [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    for (int i = 0; i < n; ++i) {
        const float v = std::isnan(z[i]) ? -INFINITY : z[i];
        if (int(best.size()) == k && !(v > best.back().first)) continue;
        const std::pair<float, int> e{v, i};
        best.insert(std::upper_bound(best.begin(), best.end(), e, before), e);
        if (int(best.size()) > k) best.pop_back();
    }
    std::vector<int> ids(best.size());
    for (std::size_t j = 0; j < best.size(); ++j) ids[j] = best[j].second;
    return ids;
}

}  // namespace

std::vector<std::pair<int, float>> Sampler::filtered(const float* logits, std::span<const std::int32_t> history) {
    penalize(logits, history);
    if (cfg_.top_k > 0 && cfg_.top_k < vocab_) {
        // The softmax of the k kept, which is the full softmax renormalised over them; in id
        // order, as run.c walks its candidates.
        std::vector<int> ids = top_k_ids(work_.data(), vocab_, cfg_.top_k);
        std::sort(ids.begin(), ids.end());
        std::vector<std::pair<int, float>> probs(ids.size());
        float mx = -INFINITY;
        for (int id : ids) mx = std::max(mx, work_[std::size_t(id)] / cfg_.temperature);
        double sum = 0;
        for (std::size_t j = 0; j < ids.size(); ++j) {
            const float p = std::exp(work_[std::size_t(ids[j])] / cfg_.temperature - mx);
            probs[j] = {ids[j], p};
            sum += p;
        }
        for (auto& p : probs) p.second = float(p.second / sum);
        return probs;
    }
    // Softmax at the temperature over the whole vocabulary, in float as run.c computes it.
    for (auto& z : work_) z /= cfg_.temperature;
    std::vector<std::pair<int, float>> probs(static_cast<std::size_t>(vocab_));
    float mx = -INFINITY;
    for (float z : work_) mx = std::max(mx, z);
    float sum = 0;
    for (int i = 0; i < vocab_; ++i) {
        const float p = std::exp(work_[std::size_t(i)] - mx);
        probs[std::size_t(i)] = {i, p};
        sum += p;
    }
    for (auto& p : probs) p.second /= sum;
    return probs;
}

namespace {

// run.c's nucleus: drop what cannot be in it (below (1 - top_p) / (n - 1)), sort by
// probability, keep up to where the cumulative mass passes top_p. Not renormalised.
std::vector<std::pair<int, float>> nucleus(const std::vector<std::pair<int, float>>& probs, float top_p) {
    const float cutoff = (1.0f - top_p) / float(probs.size() > 1 ? probs.size() - 1 : 1);
    std::vector<std::pair<int, float>> cand;
    for (const auto& p : probs)
        if (p.second >= cutoff) cand.push_back(p);
    std::stable_sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    float cum = 0;
    for (std::size_t i = 0; i < cand.size(); ++i) {
        cum += cand[i].second;
        if (cum > top_p) {
            cand.resize(i + 1);
            break;
        }
    }
    return cand;
}

bool nucleus_on(float top_p) { return top_p > 0.0f && top_p < 1.0f; }

}  // namespace

std::vector<std::pair<int, float>> Sampler::distribution(const float* logits, std::span<const std::int32_t> history) {
    if (cfg_.temperature == 0.0f) return {{sample(logits, history), 1.0f}};
    auto probs = filtered(logits, history);
    if (!nucleus_on(cfg_.top_p)) return probs;
    auto kept = nucleus(probs, cfg_.top_p);
    double total = 0;
    for (const auto& p : kept) total += p.second;
    for (auto& p : kept) p.second = float(p.second / total);
    return kept;
}

int Sampler::sample(const float* logits, std::span<const std::int32_t> history) {
    if (cfg_.temperature == 0.0f) {
        if (cfg_.repeat_penalty == 1.0f) return argmax(logits, vocab_);
        penalize(logits, history);
        return argmax(work_.data(), vocab_);
    }
    const auto probs = filtered(logits, history);
    const float coin = next_uniform();
    const auto& cand = nucleus_on(cfg_.top_p) ? nucleus(probs, cfg_.top_p) : probs;
    float mass = 1.0f;
    if (nucleus_on(cfg_.top_p)) {
        mass = 0;
        for (const auto& p : cand) mass += p.second;
    }
    const float r = coin * mass;
    float cdf = 0;
    for (const auto& [id, p] : cand) {
        cdf += p;
        if (r < cdf) return id;
    }
    return cand.back().first;
}

}  // namespace ane
