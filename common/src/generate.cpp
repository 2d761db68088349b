#include "ane/generate.hpp"

#include <algorithm>
#include <chrono>

#include "ane/error.hpp"

namespace ane {

GenerateResult generate(Decoder& decoder, Sampler& sampler, const std::vector<std::int32_t>& prompt, int max_new,
                        const std::vector<int>& stop_tokens, const std::function<void(int)>& on_token) {
    using Clock = std::chrono::steady_clock;
    require(!prompt.empty(), "the prompt is empty");
    require(int(prompt.size()) + decoder.position() <= decoder.context(), "the prompt has ", prompt.size(),
            " tokens, more than the context of ", decoder.context());
    GenerateResult r;
    std::vector<std::int32_t> history = prompt;
    auto t0 = Clock::now();
    const float* logits = decoder.feed(prompt.data(), int(prompt.size()));
    r.prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    t0 = Clock::now();
    for (int i = 0; i < max_new; ++i) {
        const int next = sampler.sample(logits, history);
        if (std::find(stop_tokens.begin(), stop_tokens.end(), next) != stop_tokens.end()) {
            r.stopped_at_end_token = true;
            break;
        }
        r.generated.push_back(next);
        history.push_back(next);
        if (on_token) on_token(next);
        if (i + 1 == max_new) break;
        if (decoder.position() >= decoder.context()) {
            r.context_full = true;
            break;
        }
        const std::int32_t tok = next;
        logits = decoder.feed(&tok, 1);
    }
    r.generate_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return r;
}

}  // namespace ane
