#include "ane/train/run_data.hpp"

#include <algorithm>

#include "ane/distributed.hpp"
#include "ane/error.hpp"
#include "ane/model/init.hpp"
#include "ane/model_file.hpp"

namespace ane {

RunShape resolve_run_shape(int file_seq, bool from_scratch, std::optional<int> window, std::optional<int> context) {
    RunShape r;
    r.window = window.value_or(file_seq);
    r.context = context ? *context : from_scratch ? r.window : std::max(file_seq, r.window);
    return r;
}

Checkpoint load_run_model(const ModelSource& src, long seed, bool load_moments) {
    const int sources = int(!src.preset.empty()) + int(!src.config_path.empty()) + int(!src.init.empty()) +
                        int(!src.resume.empty());
    require(sources == 1, "give exactly one of --preset, --config, --init, --resume");
    if (!src.resume.empty()) return read_blzt(src.resume, {.load_moments = load_moments});
    Checkpoint ck;
    if (!src.init.empty()) {
        ck = load_model(src.init);
        ck.state = TrainState{};
        ck.adam.reset();
        ck.metadata = nlohmann::json::object();
        return ck;
    }
    const ModelConfig c = src.preset.empty() ? load_config_json(src.config_path) : preset(src.preset);
    ck.weights = init_weights(c, seed);
    return ck;
}

TrainData open_train_data(const std::string& data, const std::string& val, int vocab, int seq, bool full_vocab) {
    require(!data.empty(), "no training data: give --data FILE");
    TrainData d{TokenFile(data), std::nullopt, {}, {}, VocabMap::identity(vocab)};
    d.train.check_vocab(vocab);
    if (!val.empty()) {
        d.val_file.emplace(val);
        d.val_file->check_vocab(vocab);
        d.train_tokens = d.train.tokens();
        d.val_tokens = d.val_file->tokens();
    } else {
        const TokenSplit split = split_train_val(d.train.size());
        d.train_tokens = d.train.tokens().first(split.train_tokens);
        d.val_tokens = d.train.tokens().subspan(split.val_start);
    }
    require(d.train_tokens.size() > std::size_t(seq) + 1, data, ": the training split has ", d.train_tokens.size(),
            " tokens, fewer than one window of ", seq + 1);
    require(d.val_tokens.size() > std::size_t(seq) + 1, val.empty() ? data : val, ": the validation split has ",
            d.val_tokens.size(), " tokens, fewer than one window of ", seq + 1);
    if (!full_vocab) d.map = VocabMap::build({d.train_tokens, d.val_tokens}, vocab);
    return d;
}

WindowBatch::WindowBatch(int batch, int seq, const VocabMap& map)
    : batch_(batch), seq_(seq), map_(map), inputs_(std::size_t(batch) * seq), targets_(std::size_t(batch) * seq) {}

void WindowBatch::fill(TokenSpan tokens, std::size_t pos, int b) {
    const std::size_t base = std::size_t(b) * seq_;
    for (int t = 0; t < seq_; ++t) {
        inputs_[base + t] = tokens[pos + t];
        targets_[base + t] = map_.to_compact(tokens[pos + t + 1]);
    }
}

double validation_loss(Transformer& model, TokenSpan tokens, const std::vector<std::size_t>& offsets,
                       WindowBatch& batch) {
    double total = 0;
    for (std::size_t i = 0; i < offsets.size(); i += batch.batch()) {
        const int nb = int(std::min<std::size_t>(batch.batch(), offsets.size() - i));
        for (int b = 0; b < nb; ++b) batch.fill(tokens, offsets[i + b], b);
        model.forward(batch.inputs(), nb, batch.seq());
        total += model.loss(batch.targets()) * nb;
    }
    return total / double(offsets.size());
}

double validation_loss_across_ranks(Transformer& model, TokenSpan tokens, const std::vector<std::size_t>& offsets,
                                    WindowBatch& batch) {
    const int ranks = dist::size();
    if (ranks == 1) return validation_loss(model, tokens, offsets, batch);
    std::vector<std::size_t> mine;
    for (std::size_t i = std::size_t(dist::rank()); i < offsets.size(); i += std::size_t(ranks)) mine.push_back(offsets[i]);
    double sum = mine.empty() ? 0.0 : validation_loss(model, tokens, mine, batch) * double(mine.size());
    dist::allreduce_sum(&sum, 1);
    return sum / double(offsets.size());
}

ValidationModel::ValidationModel(Transformer& training, const Weights& weights, Device& training_device, int threads,
                                 const Lora* lora)
    : training_(training) {
    if (training_device.name() == "cpu") return;
    device_ = make_device("cpu", threads);
    twin_ = std::make_unique<Transformer>(weights, *device_, training.max_batch(), training.vocab_map(),
                                          /*for_training=*/false, training.max_seq());
    twin_->set_lora(lora);
}

ValidationModel::~ValidationModel() = default;

Transformer& ValidationModel::model() {
    if (!twin_) return training_;
    twin_->weights_changed();
    return *twin_;
}

}  // namespace ane
