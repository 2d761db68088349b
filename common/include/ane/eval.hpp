#pragma once
// Validation loss and bits-per-byte over a token stream with a sliding window, the
// parameter-golf evaluation: windows of `seq` tokens advance by `stride`; the first window
// scores all its positions, every later one only the targets no earlier window scored (its
// last `stride` positions), so each token after the first is scored exactly once and, except
// at the start, with at least seq - stride tokens of context. A last partial window covers
// the tail. stride == seq is the plain evaluation (consecutive non-overlapping windows).
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "ane/model/decoder.hpp"
#include "ane/model/transformer.hpp"
#include "ane/token_file.hpp"
#include "ane/tokenizer.hpp"

namespace ane {

struct EvalWindow {
    std::size_t start = 0;  // inputs tokens[start, start + length), targets shifted by one
    int length = 0;
    int score_from = 0;     // positions [score_from, length) are scored
};

// Throws when the stream is shorter than one window (seq + 1 tokens) or stride is not in [1, seq].
std::vector<EvalWindow> plan_eval_windows(std::size_t n_tokens, int seq, int stride);

struct EvalResult {
    double loss_sum = 0;      // natural-log cross-entropy summed over scored tokens
    std::int64_t tokens = 0;  // scored tokens
    std::int64_t bytes = 0;   // their UTF-8 bytes by the bits-per-byte rule
    double val_loss() const { return tokens ? loss_sum / double(tokens) : 0.0; }
    // (val_loss / ln 2) * (tokens / bytes)
    double val_bpb() const;
};

struct EvalProgress {
    std::int64_t tokens_done = 0, tokens_total = 0;
    double seconds = 0;
};

// Scores `tokens` with the model in batches of up to model.max_batch() windows. The model's
// vocabulary map decides full or compact softmax; `bytes` may be null (no bpb).
// Data parallelism (mpirun): this rank's consecutive share of the windows, and the ranks'
// results added up on every rank (in rank order, so N ranks print what one does).
std::vector<EvalWindow> rank_share(const std::vector<EvalWindow>& windows);
EvalResult sum_across_ranks(const EvalResult& mine);

EvalResult evaluate_stream(Transformer& model, TokenSpan tokens,
                           const std::vector<EvalWindow>& windows, const ByteCounter* bytes,
                           const std::function<void(const EvalProgress&)>& progress = {});
// The same scores through the KV-cache decoder (weights kept encoded: F16, Q8_0, ...): as many
// windows per product as it has sequences and rows for (its context must hold a window); the
// softmax runs over `map`'s ids.
EvalResult evaluate_stream(Decoder& decoder, const VocabMap& map, TokenSpan tokens,
                           const std::vector<EvalWindow>& windows, const ByteCounter* bytes,
                           const std::function<void(const EvalProgress&)>& progress = {});

}  // namespace ane
