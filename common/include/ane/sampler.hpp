#pragma once
// Choosing the next token from logits: greedy at temperature 0; otherwise repeat penalty,
// top-k, temperature, softmax and top-p (nucleus) as llama2.c's run.c does it, with its
// xorshift64* generator, so that the same seed gives the same text as llama2.c.
#include <cstdint>
#include <span>
#include <vector>

namespace ane {

struct SamplerConfig {
    float temperature = 0.8f;     // 0 = greedy
    int top_k = 40;               // 0 = off
    float top_p = 0.9f;           // >= 1 or <= 0 = off
    float repeat_penalty = 1.0f;  // 1 = off; > 1 discourages the last repeat_window tokens
    int repeat_window = 64;
    std::uint64_t seed = 42;
};

class Sampler {
public:
    Sampler(const SamplerConfig& config, int vocab);
    // history: the tokens so far (for the repeat penalty).
    int sample(const float* logits, std::span<const std::int32_t> history);
    // The distribution sample() draws from: (id, probability) after every filter, summing to 1.
    std::vector<std::pair<int, float>> distribution(const float* logits, std::span<const std::int32_t> history);
    float next_uniform();  // [0, 1), llama2.c's random_f32

private:
    void penalize(const float* logits, std::span<const std::int32_t> history);  // into work_
    std::vector<std::pair<int, float>> filtered(const float* logits, std::span<const std::int32_t> history);
    SamplerConfig cfg_;
    int vocab_;
    std::uint64_t state_;
    std::vector<float> work_;
};

}  // namespace ane
