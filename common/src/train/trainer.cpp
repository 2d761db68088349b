#include "ane/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/model/init.hpp"
#include "ane/model/transformer.hpp"
#include "ane/model_file.hpp"
#include "ane/optim.hpp"
#include "ane/sampling.hpp"
#include "ane/token_file.hpp"

namespace ane {

std::string best_checkpoint_path(const std::string& output) {
    std::filesystem::path p(output);
    return (p.parent_path() / (p.stem().string() + ".best" + p.extension().string())).string();
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool given(const TrainOptions& o, const std::string& flag) {
    return std::find(o.explicit_flags.begin(), o.explicit_flags.end(), flag) != o.explicit_flags.end();
}

// The hyper-parameters a resumed run takes from its checkpoint unless the command line sets them.
nlohmann::json run_settings(const TrainOptions& o) {
    return {{"seed", o.seed},         {"steps", o.steps},       {"batch", o.batch},
            {"accum", o.accum},       {"lr", o.lr},             {"min_lr_frac", o.min_lr_frac},
            {"clip", o.clip},         {"weight_decay", o.weight_decay}, {"loss_scale", o.loss_scale},
            {"warmup", o.warmup},     {"eval_every", o.eval_every}, {"eval_windows", o.eval_windows},
            {"full_vocab", o.full_vocab}, {"beta1", o.beta1}, {"beta2", o.beta2}, {"adam_eps", o.adam_eps}};
}

void restore_settings(TrainOptions& o, const nlohmann::json& s) {
    auto take = [&](const char* key, const char* flag, auto& field) {
        if (s.contains(key) && !given(o, flag)) field = s[key].get<std::decay_t<decltype(field)>>();
    };
    take("seed", "--seed", o.seed);
    take("steps", "--steps", o.steps);
    take("batch", "--batch", o.batch);
    take("accum", "--accum", o.accum);
    take("lr", "--lr", o.lr);
    take("min_lr_frac", "--min-lr-frac", o.min_lr_frac);
    take("clip", "--clip", o.clip);
    take("weight_decay", "--wd", o.weight_decay);
    take("loss_scale", "--scale", o.loss_scale);
    take("warmup", "--warmup", o.warmup);
    take("eval_every", "--eval-every", o.eval_every);
    take("eval_windows", "--eval-windows", o.eval_windows);
    take("full_vocab", "--full-vocab", o.full_vocab);
    take("beta1", "--beta1", o.beta1);
    take("beta2", "--beta2", o.beta2);
    take("adam_eps", "--adam-eps", o.adam_eps);
}

struct DataSet {
    TokenFile train;
    std::optional<TokenFile> val_file;
    std::span<const std::uint16_t> train_tokens, val_tokens;
};

DataSet open_data(const TrainOptions& o, int vocab) {
    require(!o.data.empty(), "no training data: give --data FILE");
    DataSet d{TokenFile(o.data), std::nullopt, {}, {}};
    d.train.check_vocab(vocab);
    if (!o.val.empty()) {
        d.val_file.emplace(o.val);
        d.val_file->check_vocab(vocab);
        d.train_tokens = d.train.tokens();
        d.val_tokens = d.val_file->tokens();
    } else {
        const TokenSplit split = split_train_val(d.train.size());
        d.train_tokens = d.train.tokens().first(split.train_tokens);
        d.val_tokens = d.train.tokens().subspan(split.val_start);
    }
    return d;
}

}  // namespace

TrainSummary train(const TrainOptions& options, const TrainCallbacks& cb, const std::atomic<bool>& stop) {
    const auto t_begin = Clock::now();
    TrainOptions o = options;
    auto info = [&](const std::string& s) {
        if (cb.info) cb.info(s);
    };
    auto warn = [&](const std::string& s) {
        if (cb.warning) cb.warning(s);
    };

    // The model.
    Checkpoint ck;
    nlohmann::json resumed = nlohmann::json::object();
    const int sources = int(!o.preset.empty()) + int(!o.config_path.empty()) + int(!o.init.empty()) +
                        int(!o.resume.empty());
    require(sources == 1, "give exactly one of --preset, --config, --init, --resume");
    if (!o.resume.empty()) {
        ck = read_blzt(o.resume, {.load_moments = true});
        if (ck.metadata.contains("train")) {
            resumed = ck.metadata["train"];
            if (resumed.contains("settings")) restore_settings(o, resumed["settings"]);
        } else {
            warn(o.resume + ": has no ane-train state; continuing its weights and moments with a fresh data stream");
        }
        info("resuming " + o.resume + " at step " + std::to_string(ck.state.step));
    } else if (!o.init.empty()) {
        ck = load_model(o.init);
        ck.state = TrainState{};
        ck.adam.reset();
        ck.metadata = nlohmann::json::object();
        info("initialized from " + o.init);
    } else {
        const ModelConfig c = o.preset.empty() ? load_config_json(o.config_path) : preset(o.preset);
        ck.weights = init_weights(c, o.seed);
    }
    ModelConfig& c = ck.weights.config;
    if (o.residual_scale) c.residual_scale = *o.residual_scale;
    if (o.seq) c.seq = *o.seq;
    c.validate("model");
    if (!ck.adam) ck.adam = AdamMoments::zeros(c);
    ck.adam->m.config = ck.adam->v.config = c;
    require(o.batch >= 1 && o.accum >= 1, "--batch and --accum must be at least 1");
    require(o.steps >= 1, "--steps must be at least 1");

    // The data.
    DataSet data = open_data(o, c.vocab);
    const int S = c.seq, B = o.batch;
    require(data.train_tokens.size() > std::size_t(S) + 1, o.data, ": the training split has ",
            data.train_tokens.size(), " tokens, fewer than one window of ", S + 1);
    require(data.val_tokens.size() > std::size_t(S) + 1, o.val.empty() ? o.data : o.val, ": the validation split has ",
            data.val_tokens.size(), " tokens, fewer than one window of ", S + 1);
    const VocabMap map = o.full_vocab ? VocabMap::identity(c.vocab)
                                      : VocabMap::build({data.train_tokens, data.val_tokens}, c.vocab);

    auto device = make_device(o.device, o.threads);
    Transformer model(ck.weights, *device, B, map);
    Weights grads = Weights::zeros(c);
    const AdamWConfig adam{o.beta1, o.beta2, o.adam_eps, o.weight_decay};
    const LrSchedule schedule{o.lr, o.warmup, o.steps, o.min_lr_frac};

    TrainWindowSampler windows(data.train_tokens.size(), S, o.seed);
    if (resumed.contains("rng_state")) windows.restore(resumed["rng_state"].get<std::uint64_t>());
    std::optional<double> best_val;
    if (resumed.contains("best_val_loss")) best_val = resumed["best_val_loss"].get<double>();
    std::int64_t tokens_seen = resumed.value("tokens_seen", std::int64_t(0));

    TrainSummary sum;
    sum.params = c.params();
    sum.compact_vocab = map.compact_vocab();
    sum.device_description = device->describe();
    info("model: " + std::to_string(c.params()) + " parameters, dim " + std::to_string(c.dim) + ", " +
         std::to_string(c.layers) + " layers, seq " + std::to_string(S) + "; vocabulary " +
         std::to_string(map.compact_vocab()) + (o.full_vocab ? " (full)" : " (compact)"));
    info("data: " + std::to_string(data.train_tokens.size()) + " training tokens, " +
         std::to_string(data.val_tokens.size()) + " validation tokens; " + std::to_string(B * S * o.accum) +
         " tokens per update");
    info("device: " + sum.device_description);

    std::vector<std::int32_t> inputs(std::size_t(B) * S), targets(std::size_t(B) * S);
    auto fill_window = [&](std::span<const std::uint16_t> tokens, std::size_t pos, int b) {
        for (int t = 0; t < S; ++t) {
            inputs[std::size_t(b) * S + t] = tokens[pos + t];
            targets[std::size_t(b) * S + t] = map.to_compact(tokens[pos + t + 1]);
        }
    };
    const std::vector<std::size_t> val_offsets =
        mezo_validation_offsets(0, data.val_tokens.size(), S, std::max(1, o.eval_windows));
    auto evaluate = [&]() {
        double total = 0;
        for (std::size_t i = 0; i < val_offsets.size(); i += B) {
            const int nb = int(std::min<std::size_t>(B, val_offsets.size() - i));
            for (int b = 0; b < nb; ++b) fill_window(data.val_tokens, val_offsets[i + b], b);
            model.forward(inputs.data(), nb, S);
            total += model.loss_and_dlogits(targets.data(), 1.0f) * nb;
        }
        return total / double(val_offsets.size());
    };

    auto save = [&](const std::string& path, double last_loss) {
        const auto t0 = Clock::now();
        ck.state.total_steps = o.steps;
        ck.state.lr = schedule.at(std::max(0, ck.state.step - 1));
        ck.state.loss = float(last_loss);
        const std::uint64_t st = windows.state();
        ck.metadata["train"] = {{"settings", run_settings(o)},
                                {"rng_state", st},
                                {"tokens_seen", tokens_seen},
                                {"data", o.data}};
        if (best_val) ck.metadata["train"]["best_val_loss"] = *best_val;
        write_blzt(ck, path);
        sum.io_seconds += seconds_since(t0);
        sum.saved.push_back(path);
    };

    const double prior_train_ms = ck.state.cum_train_ms, prior_wall_ms = ck.state.cum_wall_ms;
    const auto t_loop = Clock::now();
    double last_loss = 0;
    while (ck.state.step < o.steps) {
        if (stop.load()) {
            sum.interrupted = true;
            break;
        }
        if (o.time_budget > 0 && seconds_since(t_loop) >= o.time_budget) break;
        if (o.stop_after > 0 && sum.steps_done >= o.stop_after) break;
        const auto t_step = Clock::now();
        const DeviceProfile before = device->profile();
        zero_grads(grads);
        double loss = 0;
        for (int a = 0; a < o.accum; ++a) {
            for (int b = 0; b < B; ++b) fill_window(data.train_tokens, windows.next(), b);
            model.forward(inputs.data(), B, S);
            loss += model.loss_and_dlogits(targets.data(), o.loss_scale);
            model.backward(grads);
        }
        loss /= o.accum;
        const DeviceProfile& after = device->profile();
        sum.matmul_seconds += after.matmul_s - before.matmul_s;
        sum.attention_seconds += after.attention_s - before.attention_s;
        sum.elementwise_seconds += after.elementwise_s - before.elementwise_s;
        sum.flops += (after.matmul_flops - before.matmul_flops) + (after.attention_flops - before.attention_flops);

        if (cb.gradients_ready) cb.gradients_ready(grads, ck.state.step);
        const auto t_opt = Clock::now();
        const double unscale = 1.0 / (double(o.accum) * o.loss_scale);
        const double norm = global_grad_norm(grads) * unscale;
        StepReport rep;
        rep.step = ck.state.step + 1;
        rep.total_steps = o.steps;
        rep.loss = loss;
        rep.grad_norm = norm;
        rep.lr = schedule.at(ck.state.step);
        if (!std::isfinite(loss) || !std::isfinite(norm)) {
            rep.skipped = true;
            ++sum.skipped_updates;
            warn("step " + std::to_string(rep.step) + ": " + (std::isfinite(loss) ? "gradient" : "loss") +
                 " is not finite; update skipped");
        } else {
            const double clip = (o.clip > 0 && norm > o.clip) ? o.clip / norm : 1.0;
            ++ck.state.adam_t;
            adamw_update(ck.weights, grads, *ck.adam, ck.state.adam_t, float(rep.lr), adam, float(unscale * clip));
            model.refresh_classifier();
            last_loss = loss;
        }
        sum.optimizer_seconds += seconds_since(t_opt);
        ++ck.state.step;
        ++ck.state.cum_steps;
        ++sum.steps_done;
        const std::int64_t step_tokens = std::int64_t(B) * S * o.accum;
        tokens_seen += step_tokens;
        sum.tokens += step_tokens;
        rep.step_seconds = seconds_since(t_step);
        sum.step_seconds += rep.step_seconds;
        ck.state.cum_train_ms = prior_train_ms + sum.step_seconds * 1000.0;
        ck.state.cum_wall_ms = prior_wall_ms + seconds_since(t_loop) * 1000.0;
        rep.elapsed_seconds = seconds_since(t_loop);
        rep.tokens_per_second = double(sum.tokens) / std::max(1e-9, sum.step_seconds);
        rep.tokens_seen = tokens_seen;
        sum.final_loss = loss;

        // The last step of this run, whatever ends it (not Ctrl-C: that exits at once).
        const bool last = ck.state.step == o.steps ||
                          (o.time_budget > 0 && seconds_since(t_loop) >= o.time_budget) ||
                          (o.stop_after > 0 && sum.steps_done >= o.stop_after);
        if (o.eval_every > 0 && (ck.state.step % o.eval_every == 0 || last)) {
            const auto t_eval = Clock::now();
            rep.val_loss = evaluate();
            sum.eval_seconds += seconds_since(t_eval);
            sum.last_val_loss = rep.val_loss;
            if (!best_val || *rep.val_loss < *best_val) {
                best_val = rep.val_loss;
                save(best_checkpoint_path(o.output), last_loss);
            }
        }
        if (cb.step) cb.step(rep);
        if (o.save_every > 0 && ck.state.step % o.save_every == 0 && !last) save(o.output, last_loss);
    }
    save(o.output, last_loss);
    sum.best_val_loss = best_val;
    sum.wall_seconds = seconds_since(t_begin);
    return sum;
}

}  // namespace ane
