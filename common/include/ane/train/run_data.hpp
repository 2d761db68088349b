#pragma once
// What ane-train and ane-mezo share around the model: the training and validation token
// streams, batches of windows, the validation loss over fixed windows.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ane/checkpoint.hpp"
#include "ane/model/transformer.hpp"
#include "ane/token_file.hpp"
#include "ane/vocab_map.hpp"

namespace ane {

// A resumed run's setting `key` from `settings`, unless `flag` was given on the command line.
template <typename T>
void restore_setting(const nlohmann::json& settings, const char* key, const std::vector<std::string>& explicit_flags,
                     const char* flag, T& field) {
    if (!settings.contains(key)) return;
    for (const auto& f : explicit_flags)
        if (f == flag) return;
    field = settings[key].get<T>();
}

// The training window and the context stored with the model. From scratch the context is the
// window. A model from a file keeps its context (fine-tuning at a shorter window never
// shrinks it) and grows to the window when that is longer; `context` overrides both.
struct RunShape {
    int window = 0, context = 0;
};
RunShape resolve_run_shape(int file_seq, bool from_scratch, std::optional<int> window, std::optional<int> context);

// Where a run's model comes from: exactly one field set.
struct ModelSource {
    std::string preset, config_path, init, resume;
};
// --resume: the checkpoint as it is (moments when asked); --init: the weights of any model
// file as a new run (no run state, moments or metadata); --preset/--config: fresh weights.
Checkpoint load_run_model(const ModelSource& source, long seed, bool load_moments);

struct TrainData {
    TokenFile train;
    std::optional<TokenFile> val_file;
    TokenSpan train_tokens, val_tokens;
    VocabMap map;
};

// Opens `data` and `val` (or splits off the last 10% of `data`), checks every id against the
// vocabulary and both splits against one window of seq + 1 tokens, and builds the compact
// vocabulary of both splits (or the identity map with full_vocab).
TrainData open_train_data(const std::string& data, const std::string& val, int vocab, int seq, bool full_vocab);

// B windows of S tokens: full input ids and compact next-token targets.
class WindowBatch {
public:
    WindowBatch(int batch, int seq, const VocabMap& map);
    void fill(TokenSpan tokens, std::size_t pos, int b);
    const std::int32_t* inputs() const { return inputs_.data(); }
    const std::int32_t* targets() const { return targets_.data(); }
    int batch() const { return batch_; }
    int seq() const { return seq_; }

private:
    int batch_, seq_;
    const VocabMap& map_;
    std::vector<std::int32_t> inputs_, targets_;
};

// Validation forward passes run on the cpu in fp32 whatever device trains (spec/ane.md §6):
// the training model itself when it is on the cpu, else a cpu twin reading the same weights.
class ValidationModel {
public:
    ValidationModel(Transformer& training, const Weights& weights, Device& training_device, int threads,
                    const Lora* lora);
    ~ValidationModel();
    // Up to date with the weights; call after they change.
    Transformer& model();

private:
    Transformer& training_;
    std::unique_ptr<Device> device_;
    std::unique_ptr<Transformer> twin_;
};

// Mean cross-entropy over the windows at `offsets`, a batch at a time.
double validation_loss(Transformer& model, TokenSpan tokens, const std::vector<std::size_t>& offsets,
                       WindowBatch& batch);
// The same under mpirun: each rank scores every N-th window, the losses are summed across the
// ranks, and every rank returns the mean. One rank: validation_loss itself.
double validation_loss_across_ranks(Transformer& model, TokenSpan tokens, const std::vector<std::size_t>& offsets,
                                    WindowBatch& batch);

}  // namespace ane
