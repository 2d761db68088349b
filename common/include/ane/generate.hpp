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

}  // namespace ane
