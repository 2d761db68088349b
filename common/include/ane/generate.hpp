#pragma once
// Text generation: the prompt through the KV cache as one batch, then one token at a time.
#include <cstdint>
#include <functional>
#include <vector>

#include "ane/model/decoder.hpp"
#include "ane/sampler.hpp"

namespace ane {

struct GenerateResult {
    std::vector<std::int32_t> generated;
    double prompt_seconds = 0, generate_seconds = 0;
    bool stopped_at_end_token = false, context_full = false;
};

// Feeds `prompt` (non-empty), then samples up to max_new tokens, stopping at any of
// stop_tokens or when the context is full. on_token sees each new token as it is chosen.
GenerateResult generate(Decoder& decoder, Sampler& sampler, const std::vector<std::int32_t>& prompt, int max_new,
                        const std::vector<int>& stop_tokens, const std::function<void(int)>& on_token = {});

// Several prompts at once: up to decoder.sequences() are in flight, each prompt fed alone into
// its own cache, then one token of every unfinished sequence per step in one batch (so one
// read of the weights serves all of them); a finished sequence's cache takes the next prompt.
// Every prompt gets its own Sampler(config, vocab), as a run of generate() per prompt would.
// on_token(prompt index, token); on_finished(prompt index, its result) when it is done.
// Results in the order of the prompts.
std::vector<GenerateResult> generate_batch(
    Decoder& decoder, const SamplerConfig& config, int vocab, const std::vector<std::vector<std::int32_t>>& prompts,
    int max_new, const std::vector<int>& stop_tokens, const std::function<void(std::size_t, int)>& on_token = {},
    const std::function<void(std::size_t, const GenerateResult&)>& on_finished = {});

}  // namespace ane
