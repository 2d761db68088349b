#include "ane/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "ane/device/device.hpp"
#include "ane/distributed.hpp"
#include "ane/error.hpp"
#include "ane/model/init.hpp"
#include "ane/model/transformer.hpp"
#include "ane/model_file.hpp"
#include "ane/optim.hpp"
#include "ane/sampling.hpp"
#include "ane/train/budget.hpp"
#include "ane/train/run_data.hpp"

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
nlohmann::json run_settings(const TrainOptions& o, int window) {
    return {{"seed", o.seed},         {"steps", o.steps},       {"time_budget", o.time_budget},
            {"seq", window},          {"batch", o.batch},
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
    take("time_budget", "--time", o.time_budget);
    if (s.contains("seq") && !given(o, "--seq")) o.seq = s["seq"].get<int>();
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

// A tensor the LoRA optimizer updates, with its gradient.
struct ParamRef {
    std::string name;
    Tensor* value;
    Tensor* grad;
};

// What every rank of a data-parallel run must share: the settings and the starting weights.
std::uint64_t run_fingerprint(const nlohmann::json& settings, const Weights& w, std::size_t train_tokens) {
    const std::string text = settings.dump() + " " + std::to_string(train_tokens);
    return w.fingerprint(dist::fingerprint(text.data(), text.size()));
}

std::uint64_t weights_fingerprint(const Weights& w, const std::optional<Lora>& lora) {
    std::uint64_t h = w.fingerprint(dist::fingerprint(nullptr, 0));
    if (lora) lora->for_each([&](const std::string&, const Tensor& t) { h = dist::fingerprint(t.data(), t.bytes(), h); });
    return h;
}

double grad_norm(const std::vector<ParamRef>& params) {
    double total = 0;
    for (const auto& p : params) total += sum_of_squares(p.grad->data(), p.grad->numel());
    return std::sqrt(total);
}

}  // namespace

TrainSummary train(const TrainOptions& options, const TrainCallbacks& cb, const std::atomic<bool>& stop) {
    const auto t_begin = Clock::now();
    TrainOptions o = options;

    // The model.
    Checkpoint ck = load_run_model({o.preset, o.config_path, o.init, o.resume}, o.seed, /*load_moments=*/true);
    nlohmann::json resumed = nlohmann::json::object();
    if (!o.resume.empty()) {
        if (ck.metadata.contains("train")) {
            resumed = ck.metadata["train"];
            if (resumed.contains("settings")) restore_settings(o, resumed["settings"]);
        } else {
            cb.warn(o.resume + ": has no ane-train state; continuing its weights and moments with a fresh data stream");
        }
        cb.say("resuming " + o.resume + " at step " + std::to_string(ck.state.step));
    } else if (!o.init.empty()) {
        cb.say("initialized from " + o.init);
    }
    ModelConfig& c = ck.weights.config;
    if (o.residual_scale) c.residual_scale = *o.residual_scale;
    const RunShape shape = resolve_run_shape(c.seq, o.init.empty() && o.resume.empty(), o.seq, o.context);
    c.seq = shape.context;
    c.validate("model");
    require(o.batch >= 1 && o.accum >= 1, "--batch and --accum must be at least 1");
    const RunBudget budget = RunBudget::resolve(o.steps, o.time_budget, o.stop_after);
    o.steps = budget.steps;
    if (o.lora_rank > 0 && !ck.lora) ck.lora = Lora::init(c, o.lora_rank, parse_lora_targets(o.lora_targets), o.seed);
    const bool lora_mode = ck.lora.has_value();
    if (lora_mode) {
        ck.adam.reset();  // the base is frozen: no moments for it
    } else {
        if (!ck.adam) ck.adam = AdamMoments::zeros(c);
        ck.adam->m.config = ck.adam->v.config = c;
    }

    // The data.
    const int S = shape.window, B = o.batch;
    TrainData data = open_train_data(o.data, o.val, c.vocab, S, o.full_vocab);
    const VocabMap& map = data.map;

    auto device = make_device(o.device, device_options(o.threads, o.ane_mode, o.gemm, o.precision));
    Transformer model(ck.weights, *device, B, map, /*for_training=*/true, S);
    Weights grads = lora_mode ? Weights::norms_only(c) : Weights::zeros(c);
    std::optional<Lora> lora_grads;
    std::vector<ParamRef> lora_params;  // adapters and RMS gains: what a LoRA run trains
    if (lora_mode) {
        model.set_lora(&*ck.lora);
        lora_grads = Lora::zeros(c, ck.lora->rank, ck.lora->targets);
        ck.lora->for_each([&](const std::string& n, Tensor& t) { lora_params.push_back({n, &t, lora_grads->find(n)}); });
        ck.weights.for_each([&](const std::string& n, Tensor& t) {
            if (is_norm_gain(n)) lora_params.push_back({n, &t, grads.find(n)});
        });
        for (const auto& p : lora_params)
            for (const char* slot : {"m.", "v."}) {
                Tensor& moment = ck.lora_adam[slot + p.name];
                if (moment.shape() != p.value->shape()) moment = Tensor(p.value->shape());
            }
        cb.say("LoRA: rank " + std::to_string(ck.lora->rank) + " on " + lora_targets_string(ck.lora->targets) + ", " +
             std::to_string(ck.lora->params()) + " adapter parameters (+ RMS gains) trained, base frozen");
    }
    const AdamWConfig adam{o.beta1, o.beta2, o.adam_eps, o.weight_decay};
    const LrSchedule schedule{o.lr, o.warmup, o.steps, o.min_lr_frac};

    // Data parallelism: every rank draws the same stream of windows and keeps every N-th of it
    // (rank r the windows r, r + N, ...), so N ranks of batch B see what one rank of batch N·B
    // would, and never repeat one another.
    const int ranks = dist::size(), rank = dist::rank();
    if (ranks > 1) {
        dist::require_same(run_fingerprint(run_settings(o, S), ck.weights, data.train_tokens.size()),
                           "the model, the data or the flags they were started with");
        const int before = resumed.value("ranks", 1);
        if (!o.resume.empty() && before != ranks)
            cb.warn(o.resume + ": saved by a run of " + std::to_string(before) + " rank(s), continued on " +
                    std::to_string(ranks) + ": the order of the training windows changes");
        cb.say("data parallel: " + std::to_string(ranks) + " ranks of batch " + std::to_string(B) + ", " +
               std::to_string(ranks * B * S * o.accum) + " tokens per update");
    }
    TrainWindowSampler windows(data.train_tokens.size(), S, o.seed);
    if (resumed.contains("rng_state")) windows.restore(resumed["rng_state"].get<std::uint64_t>());
    std::optional<double> best_val;
    if (resumed.contains("best_val_loss")) best_val = resumed["best_val_loss"].get<double>();
    std::int64_t tokens_seen = resumed.value("tokens_seen", std::int64_t(0));

    TrainSummary sum;
    sum.params = c.params();
    sum.trainable_params = sum.params;
    sum.mode = "backprop";
    if (lora_mode) {
        sum.mode = "backprop-lora";
        sum.trainable_params = 0;
        for (const auto& p : lora_params) sum.trainable_params += p.value->numel();
    }
    sum.compact_vocab = map.compact_vocab();
    sum.device_description = device->describe();
    cb.say("model: " + std::to_string(c.params()) + " parameters, dim " + std::to_string(c.dim) + ", " +
         std::to_string(c.layers) + " layers, window " + std::to_string(S) + " (context " + std::to_string(c.seq) +
         "); vocabulary " +
         std::to_string(map.compact_vocab()) + (o.full_vocab ? " (full)" : " (compact)"));
    cb.say("data: " + std::to_string(data.train_tokens.size()) + " training tokens, " +
         std::to_string(data.val_tokens.size()) + " validation tokens; " + std::to_string(B * S * o.accum) +
         " tokens per update");
    cb.say("device: " + sum.device_description);

    WindowBatch batch(B, S, map);
    const std::vector<std::size_t> val_offsets =
        mezo_validation_offsets(0, data.val_tokens.size(), S, std::max(1, o.eval_windows));
    ValidationModel val_model(model, ck.weights, *device, o.threads, lora_mode ? &*ck.lora : nullptr);
    auto evaluate = [&]() {
        return validation_loss_across_ranks(val_model.model(), data.val_tokens, val_offsets, batch);
    };
    // Dynamic loss scaling (--scale-growth): the scale goes on with a resumed run.
    const bool dynamic_scale = o.scale_growth > 0;
    float loss_scale = o.loss_scale;
    if (dynamic_scale && resumed.contains("loss_scale")) loss_scale = resumed["loss_scale"].get<float>();
    int clean_updates = 0;

    const double prior_train_ms = ck.state.cum_train_ms, prior_wall_ms = ck.state.cum_wall_ms;
    const auto t_loop = Clock::now();
    auto run_seconds = [&] { return prior_wall_ms / 1000.0 + seconds_since(t_loop); };
    float last_lr = budget.lr(schedule, std::max(0, ck.state.step - 1), run_seconds());

    auto save = [&](const std::string& path, double last_loss) {
        // Every rank must hold the same weights; rank 0 alone writes them.
        if (ranks > 1)
            dist::require_same(weights_fingerprint(ck.weights, ck.lora),
                               "the weights at step " + std::to_string(ck.state.step) + " (the ranks have diverged)");
        if (!dist::is_root()) return;
        const auto t0 = Clock::now();
        ck.state.total_steps = budget.by_time() ? ck.state.step : o.steps;
        ck.state.lr = last_lr;
        ck.state.loss = float(last_loss);
        const std::uint64_t st = windows.state();
        ck.metadata["train"] = {{"settings", run_settings(o, S)},
                                {"rng_state", st},
                                {"tokens_seen", tokens_seen},
                                {"data", o.data},
                                {"ranks", ranks}};
        if (best_val) ck.metadata["train"]["best_val_loss"] = *best_val;
        if (dynamic_scale) ck.metadata["train"]["loss_scale"] = loss_scale;
        write_blzt(ck, path);
        sum.io_seconds += seconds_since(t0);
        sum.saved.push_back(path);
    };

    // A layer's gradients are sent as soon as its backward is done (the last micro-batch's).
    dist::AsyncSum reduce;
    auto send_layer = [&](int l) {
        LayerWeights& G = grads.layers[std::size_t(l)];
        for (const auto& names : {layer_tensor_names(), layer_extra_tensor_names(c)})
            for (const auto& n : names)
                if (Tensor& t = G.get(n); !t.empty()) reduce.start(t.data(), std::size_t(t.numel()));
        reduce.progress();
    };
    auto reduce_gradients = [&] {
        if (ranks == 1) return;
        if (lora_mode) {  // adapters and gains: small, summed in one go at the end
            for (const auto& p : lora_params) dist::allreduce_sum(p.grad->data(), std::size_t(p.grad->numel()));
            return;
        }
        for (Tensor* t : {&grads.rms_final, &grads.embed, &grads.classifier})
            if (!t->empty()) reduce.start(t->data(), std::size_t(t->numel()));
        reduce.wait();
    };

    double last_loss = 0;
    for (;;) {
        // Rank 0 decides when to stop and the learning rate (both may follow its clock).
        // One reading of the clock decides; a run that stops on --time records that reading.
        const double now_s = run_seconds();
        double decision[2] = {stop.load() ? 2.0 : budget.done(ck.state.step, now_s, sum.steps_done) ? 1.0 : 0.0,
                              budget.lr(schedule, ck.state.step, now_s)};
        dist::broadcast(decision, 2);
        if (decision[0] == 2.0) {
            sum.interrupted = true;
            break;
        }
        if (decision[0] == 1.0) {
            if (sum.steps_done > 0) ck.state.cum_wall_ms = std::max(ck.state.cum_wall_ms, now_s * 1000.0);
            break;
        }
        const auto t_step = Clock::now();
        const DeviceProfile before = device->profile();
        zero_grads(grads);
        if (lora_grads) lora_grads->for_each([](const std::string&, Tensor& t) { t.zero(); });
        double loss = 0;
        const bool overlap = ranks > 1 && !lora_mode;
        for (int a = 0; a < o.accum; ++a) {
            for (int i = 0; i < B * ranks; ++i) {
                const std::size_t at = windows.next();
                if (i % ranks == rank) batch.fill(data.train_tokens, at, i / ranks);
            }
            model.forward(batch.inputs(), B, S);
            loss += model.loss_and_dlogits(batch.targets(), loss_scale);
            const bool sends = overlap && a + 1 == o.accum;
            model.backward(grads, lora_grads ? &*lora_grads : nullptr,
                           sends ? std::function<void(int)>(send_layer) : std::function<void(int)>());
        }
        reduce_gradients();  // the layers' sums are under way already
        loss /= o.accum;
        dist::allreduce_sum(&loss, 1);
        loss /= ranks;
        const DeviceProfile& after = device->profile();
        sum.matmul_seconds += after.matmul_s - before.matmul_s;
        sum.attention_seconds += after.attention_s - before.attention_s;
        sum.elementwise_seconds += after.elementwise_s - before.elementwise_s;
        sum.kernel_seconds += after.kernel_s - before.kernel_s;
        sum.flops += (after.matmul_flops - before.matmul_flops) + (after.attention_flops - before.attention_flops);

        if (cb.gradients_ready) cb.gradients_ready(grads, ck.state.step);
        const auto t_opt = Clock::now();
        const double unscale = 1.0 / (double(o.accum) * loss_scale * ranks);  // the mean over every rank's tokens
        const double norm = (lora_mode ? grad_norm(lora_params) : global_grad_norm(grads)) * unscale;
        StepReport rep;
        rep.step = ck.state.step + 1;
        rep.total_steps = o.steps;
        rep.time_budget = o.time_budget;
        rep.loss = loss;
        rep.grad_norm = norm;
        rep.lr = decision[1];
        last_lr = float(rep.lr);
        if (dynamic_scale) rep.loss_scale = loss_scale;
        if (!std::isfinite(loss) || !std::isfinite(norm)) {
            rep.skipped = true;
            ++sum.skipped_updates;
            std::string what = "step " + std::to_string(rep.step) + ": " + (std::isfinite(loss) ? "gradient" : "loss") +
                               " is not finite; update skipped";
            if (dynamic_scale) {
                loss_scale = std::max(1.0f, loss_scale / 2);
                clean_updates = 0;
                what += "; loss scale halved to " + std::to_string(int(loss_scale));
            }
            cb.warn(what);
        } else {
            if (dynamic_scale && ++clean_updates >= o.scale_growth) {  // grows up to 2^16, never shrinks here
                loss_scale = std::max(loss_scale, std::min(65536.0f, loss_scale * 2));
                clean_updates = 0;
            }
            const double clip = (o.clip > 0 && norm > o.clip) ? o.clip / norm : 1.0;
            ++ck.state.adam_t;
            if (lora_mode) {
                for (const auto& p : lora_params)
                    adamw_tensor(p.value->data(), p.grad->data(), ck.lora_adam["m." + p.name].data(),
                                 ck.lora_adam["v." + p.name].data(), p.value->numel(), ck.state.adam_t, float(rep.lr),
                                 adam, decays(p.name) ? adam.weight_decay : 0.0f, float(unscale * clip));
            } else {
                adamw_update(ck.weights, grads, *ck.adam, ck.state.adam_t, float(rep.lr), adam, float(unscale * clip));
                model.weights_changed();
            }
            last_loss = loss;
        }
        sum.optimizer_seconds += seconds_since(t_opt);
        ++ck.state.step;
        ++ck.state.cum_steps;
        ++sum.steps_done;
        const std::int64_t step_tokens = std::int64_t(B) * S * o.accum * ranks;
        tokens_seen += step_tokens;
        sum.tokens += step_tokens;
        rep.step_seconds = seconds_since(t_step);
        sum.step_seconds += rep.step_seconds;
        ck.state.cum_train_ms = prior_train_ms + sum.step_seconds * 1000.0;
        // One reading of the clock for the saved total and the stop decision: a run that stops
        // on --time has recorded at least that time.
        rep.elapsed_seconds = seconds_since(t_loop);
        ck.state.cum_wall_ms = prior_wall_ms + rep.elapsed_seconds * 1000.0;
        rep.run_seconds = ck.state.cum_wall_ms / 1000.0;
        rep.tokens_per_second = double(sum.tokens) / std::max(1e-9, sum.step_seconds);
        rep.tokens_seen = tokens_seen;
        sum.final_loss = loss;

        // The last step of this run, whatever ends it (not Ctrl-C: that exits at once).
        double last_flag = budget.done(ck.state.step, rep.run_seconds, sum.steps_done) ? 1.0 : 0.0;
        dist::broadcast(&last_flag, 1);
        const bool last = last_flag == 1.0;
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
        if (last) break;  // judged once, so that the final validation is never skipped by the clock
    }
    save(o.output, last_loss);
    sum.kernel_report = device->kernel_report();
    sum.best_val_loss = best_val;
    sum.wall_seconds = seconds_since(t_begin);
    return sum;
}

}  // namespace ane
