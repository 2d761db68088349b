#include "ane/generate.hpp"

#include <algorithm>
#include <chrono>
#include <memory>

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

std::vector<GenerateResult> generate_batch(
    Decoder& decoder, const SamplerConfig& config, int vocab, const std::vector<std::vector<std::int32_t>>& prompts,
    int max_new, const std::vector<int>& stop_tokens, const std::function<void(std::size_t, int)>& on_token,
    const std::function<void(std::size_t, const GenerateResult&)>& on_finished) {
    using Clock = std::chrono::steady_clock;
    struct Slot {
        std::size_t prompt = 0;
        std::unique_ptr<Sampler> sampler;
        std::vector<std::int32_t> history;
        const float* logits = nullptr;  // of its last token, valid until the next feed
        std::vector<float> own_logits;
        Clock::time_point started;
    };
    std::vector<GenerateResult> results(prompts.size());
    std::vector<Slot> slots(std::size_t(decoder.sequences()));
    std::vector<int> active;  // sequences in flight
    std::size_t next_prompt = 0;
    const auto finish = [&](int s) {
        Slot& slot = slots[std::size_t(s)];
        results[slot.prompt].generate_seconds = std::chrono::duration<double>(Clock::now() - slot.started).count();
        active.erase(std::find(active.begin(), active.end(), s));
        if (on_finished) on_finished(slot.prompt, results[slot.prompt]);
    };
    // Feeds the next prompt into sequence s (its logits copied: the next prompt overwrites them).
    const auto start = [&](int s) {
        Slot& slot = slots[std::size_t(s)];
        slot.prompt = next_prompt++;
        const auto& prompt = prompts[slot.prompt];
        require(!prompt.empty(), "prompt ", slot.prompt + 1, " is empty");
        require(int(prompt.size()) <= decoder.context(), "prompt ", slot.prompt + 1, " has ", prompt.size(),
                " tokens, more than the context of ", decoder.context());
        slot.sampler = std::make_unique<Sampler>(config, vocab);
        slot.history = prompt;
        decoder.reset(s);
        const auto t0 = Clock::now();
        const float* z = decoder.feed(prompt.data(), int(prompt.size()), nullptr, s);
        slot.own_logits.assign(z, z + vocab);
        slot.logits = slot.own_logits.data();
        slot.started = Clock::now();
        results[slot.prompt].prompt_seconds = std::chrono::duration<double>(slot.started - t0).count();
        active.push_back(s);
    };
    for (int s = 0; s < decoder.sequences() && next_prompt < prompts.size(); ++s) start(s);
    std::vector<std::int32_t> tokens;
    std::vector<int> seqs;
    while (!active.empty()) {
        // Sample every sequence in flight; those that go on feed their token in one batch.
        tokens.clear();
        seqs.clear();
        for (int s : std::vector<int>(active)) {
            Slot& slot = slots[std::size_t(s)];
            GenerateResult& r = results[slot.prompt];
            if (max_new <= 0) {
                finish(s);
                continue;
            }
            const int next = slot.sampler->sample(slot.logits, slot.history);
            if (std::find(stop_tokens.begin(), stop_tokens.end(), next) != stop_tokens.end()) {
                r.stopped_at_end_token = true;
                finish(s);
                continue;
            }
            r.generated.push_back(next);
            slot.history.push_back(next);
            if (on_token) on_token(slot.prompt, next);
            if (int(r.generated.size()) == max_new) {
                finish(s);
                continue;
            }
            if (decoder.position(s) >= decoder.context()) {
                r.context_full = true;
                finish(s);
                continue;
            }
            tokens.push_back(next);
            seqs.push_back(s);
        }
        // Sequences that finished take the next prompts before the batch runs.
        for (int s = 0; s < decoder.sequences() && next_prompt < prompts.size(); ++s)
            if (std::find(active.begin(), active.end(), s) == active.end()) start(s);
        if (tokens.empty()) continue;
        const float* z = decoder.feed_batch(tokens.data(), seqs.data(), int(tokens.size()));
        for (std::size_t i = 0; i < seqs.size(); ++i) slots[std::size_t(seqs[i])].logits = z + i * std::size_t(vocab);
    }
    return results;
}

}  // namespace ane
