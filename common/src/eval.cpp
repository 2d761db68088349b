#include "ane/eval.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ane/distributed.hpp"
#include "ane/error.hpp"
#include "ane/model/kernels.hpp"

namespace ane {

double EvalResult::val_bpb() const {
    if (bytes <= 0) return 0.0;
    return val_loss() / std::log(2.0) * (double(tokens) / double(bytes));
}

std::vector<EvalWindow> plan_eval_windows(std::size_t n_tokens, int seq, int stride) {
    require(seq >= 1, "--seq must be at least 1");
    require(stride >= 1 && stride <= seq, "--stride ", stride, " must be between 1 and --seq (", seq, ")");
    require(n_tokens >= std::size_t(seq) + 1, "the data holds ", n_tokens, " tokens, fewer than one window of ",
            seq + 1);
    const std::size_t last_target = n_tokens - 1;  // targets are tokens 1 .. n-1
    std::vector<EvalWindow> out;
    std::size_t scored_upto = 0;  // every target index <= this one is scored
    for (std::size_t start = 0; scored_upto < last_target; start += std::size_t(stride)) {
        const std::size_t end = std::min(start + std::size_t(seq), last_target);  // last target of the window
        EvalWindow w;
        w.start = start;
        w.length = int(end - start);
        w.score_from = int(scored_upto - start);  // first unscored target is scored_upto + 1 = start + 1 + pos
        if (scored_upto < start) w.score_from = 0;
        out.push_back(w);
        scored_upto = end;
    }
    return out;
}

std::vector<EvalWindow> rank_share(const std::vector<EvalWindow>& windows) {
    const std::size_t n = windows.size(), r = std::size_t(dist::rank()), N = std::size_t(dist::size());
    return {windows.begin() + std::ptrdiff_t(n * r / N), windows.begin() + std::ptrdiff_t(n * (r + 1) / N)};
}

EvalResult sum_across_ranks(const EvalResult& mine) {
    if (dist::size() == 1) return mine;
    // Every rank's three numbers on every rank (exact: counts stay far below 2^53), then added
    // in rank order.
    std::vector<double> all(std::size_t(dist::size()) * 3, 0.0);
    double* slot = all.data() + std::size_t(dist::rank()) * 3;
    slot[0] = mine.loss_sum;
    slot[1] = double(mine.tokens);
    slot[2] = double(mine.bytes);
    dist::allreduce_sum(all.data(), all.size());
    EvalResult total;
    for (int r = 0; r < dist::size(); ++r) {
        total.loss_sum += all[std::size_t(r) * 3];
        total.tokens += std::int64_t(all[std::size_t(r) * 3 + 1]);
        total.bytes += std::int64_t(all[std::size_t(r) * 3 + 2]);
    }
    return total;
}

namespace {

// The scoring loop of both models: forward(inputs, nb, L, from) runs nb windows of L tokens
// and returns the logits of positions [from, L) of each, [nb * (L - from), compact vocab].
using WindowForward = std::function<const float*(const std::int32_t*, int, int, int)>;

EvalResult score_windows(const VocabMap& map, int B, TokenSpan tokens, const std::vector<EvalWindow>& windows,
                         const ByteCounter* bytes, const std::function<void(const EvalProgress&)>& progress,
                         const WindowForward& forward) {
    EvalResult r;
    EvalProgress p;
    for (const auto& w : windows) p.tokens_total += w.length - w.score_from;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::int32_t> inputs, targets;
    std::vector<double> row_loss;
    for (std::size_t i = 0; i < windows.size();) {
        // A batch of windows that share length and scored range.
        std::size_t j = i + 1;
        while (j < windows.size() && int(j - i) < B && windows[j].length == windows[i].length &&
               windows[j].score_from == windows[i].score_from)
            ++j;
        const int nb = int(j - i), L = windows[i].length, from = windows[i].score_from, R = L - from;
        inputs.resize(std::size_t(nb) * L);
        targets.resize(std::size_t(nb) * R);
        for (int b = 0; b < nb; ++b) {
            const std::size_t s = windows[i + b].start;
            for (int t = 0; t < L; ++t) inputs[std::size_t(b) * L + t] = tokens[s + t];
            for (int t = from; t < L; ++t) {
                const int full = tokens[s + t + 1];
                const int c = map.to_compact(full);
                require(c >= 0, "token id ", full, " at position ", s + t + 1, " is not in the evaluated vocabulary");
                targets[std::size_t(b) * R + (t - from)] = c;
            }
        }
        const float* logits = forward(inputs.data(), nb, L, from);
        row_loss.resize(std::size_t(nb) * R);
        kernels::cross_entropy_rows(logits, targets.data(), nb * R, map.compact_vocab(), row_loss.data());
        for (int b = 0; b < nb; ++b) {
            const std::size_t s = windows[i + b].start;
            for (int t = from; t < L; ++t) {
                r.loss_sum += row_loss[std::size_t(b) * R + (t - from)];
                ++r.tokens;
                if (bytes) r.bytes += bytes->bytes(tokens[s + t], tokens[s + t + 1]);
            }
        }
        p.tokens_done += std::int64_t(nb) * R;
        p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (progress) progress(p);
        i = j;
    }
    return r;
}

}  // namespace

EvalResult evaluate_stream(Transformer& model, TokenSpan tokens, const std::vector<EvalWindow>& windows,
                           const ByteCounter* bytes, const std::function<void(const EvalProgress&)>& progress) {
    return score_windows(model.vocab_map(), model.max_batch(), tokens, windows, bytes, progress,
                         [&](const std::int32_t* inputs, int nb, int L, int from) {
                             model.forward(inputs, nb, L, from);
                             return model.logits();
                         });
}

EvalResult evaluate_stream(Decoder& decoder, const VocabMap& map, TokenSpan tokens,
                           const std::vector<EvalWindow>& windows, const ByteCounter* bytes,
                           const std::function<void(const EvalProgress&)>& progress) {
    std::vector<float> scored;
    const int V = map.full_vocab(), C = map.compact_vocab();
    const int B = std::max(1, std::min(decoder.sequences(), decoder.max_chunk() / std::max(1, decoder.context())));
    return score_windows(map, B, tokens, windows, bytes, progress,
                         [&](const std::int32_t* inputs, int nb, int L, int from) {
                             // Windows of one batch in one product per weight, each in its own cache.
                             const float* all = decoder.feed_windows(inputs, nb, L);
                             scored.resize(std::size_t(nb) * (L - from) * C);
                             for (int b = 0; b < nb; ++b)
                                 for (int t = from; t < L; ++t) {
                                     const float* row = all + (std::size_t(b) * L + t) * V;
                                     float* out = scored.data() + (std::size_t(b) * (L - from) + (t - from)) * C;
                                     for (int c = 0; c < C; ++c) out[c] = row[map.to_full(c)];
                                 }
                             return scored.data();
                         });
}

}  // namespace ane
