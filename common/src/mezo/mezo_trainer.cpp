#include "ane/mezo/mezo_trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "ane/device/device.hpp"
#include "ane/distributed.hpp"
#include "ane/error.hpp"
#include "ane/mezo/lora.hpp"
#include "ane/mezo/spsa.hpp"
#include "ane/model/transformer.hpp"
#include "ane/optim.hpp"
#include "ane/sampling.hpp"
#include "ane/train/budget.hpp"
#include "ane/train/run_data.hpp"

namespace ane {

const char* lora_mode_name(LoraMode mode) {
    switch (mode) {
        case LoraMode::None: return "none";
        case LoraMode::Merge: return "merge";
        case LoraMode::Split: return "split";
    }
    return "?";
}

LoraMode parse_lora_mode(const std::string& name) {
    if (name == "none") return LoraMode::None;
    if (name == "merge") return LoraMode::Merge;
    if (name == "split") return LoraMode::Split;
    throw error("unknown LoRA mode '", name, "' (none, merge or split)");
}

namespace {
// The family extras (q/k/v biases, QK-norm gains) come after everything else, so that a model
// without them keeps the spec's perturbation order.
template <class Keep, class Add>
void add_extras(Weights& w, Keep keep, Add add) {
    for (std::size_t l = 0; l < w.layers.size(); ++l)
        for (const auto& n : layer_extra_tensor_names(w.config)) {
            const std::string full = "layers." + std::to_string(l) + "." + n;
            if (keep(full)) add(full, w.layers[l].get(n));
        }
}
}  // namespace

std::vector<ParamSpan> mezo_parameters(Weights& w, Lora* lora) {
    std::vector<ParamSpan> out;
    auto add = [&](const std::string& name, Tensor& t) { out.push_back({name, t.data(), t.numel(), decays(name)}); };
    const std::string names[] = {"rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"};
    if (!lora) {
        add("embed", w.embed);
        for (std::size_t l = 0; l < w.layers.size(); ++l)
            for (const auto& n : names) {
                const std::string full = "layers." + std::to_string(l) + "." + n;
                add(full, *w.find(full));
            }
        add("rms_final", w.rms_final);
        if (!w.classifier.empty()) add("classifier", w.classifier);
        add_extras(w, [](const std::string&) { return true; }, add);
        return out;
    }
    for (std::size_t l = 0; l < w.layers.size(); ++l) {
        for (int t = 0; t < kLoraTargetCount; ++t) {
            LoraAdapter& ad = lora->layers[l][t];
            if (!ad.active()) continue;
            const std::string base = "layers." + std::to_string(l) + "." + lora_target_names()[t];
            add(base + ".lora_a", ad.a);
            add(base + ".lora_b", ad.b);
        }
        add("layers." + std::to_string(l) + ".rms_att", w.layers[l].rms_att);
        add("layers." + std::to_string(l) + ".rms_ffn", w.layers[l].rms_ffn);
    }
    add("rms_final", w.rms_final);
    add_extras(w, is_norm_gain, add);  // biases stay frozen with LoRA, as PEFT's bias="none"
    return out;
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

nlohmann::json run_settings(const MezoOptions& o, int window) {
    return {{"seed", o.seed},
            {"steps", o.steps},
            {"time_budget", o.time_budget},
            {"seq", window},
            {"batch", o.batch},
            {"lr", *o.lr},
            {"epsilon", o.epsilon},
            {"min_lr_frac", o.min_lr_frac},
            {"warmup", o.warmup},
            {"weight_decay", o.weight_decay},
            {"direction", o.direction == Direction::Rademacher ? "rademacher" : "gaussian"},
            {"zo_samples", o.zo_samples},
            {"exact_restore", o.exact_restore},
            {"lora", lora_mode_name(o.lora)},
            {"eval_every", o.eval_every},
            {"eval_windows", o.eval_windows},
            {"full_vocab", o.full_vocab}};
}

void restore_settings(MezoOptions& o, const nlohmann::json& s) {
    const auto& f = o.explicit_flags;
    restore_setting(s, "seed", f, "--seed", o.seed);
    restore_setting(s, "steps", f, "--steps", o.steps);
    restore_setting(s, "time_budget", f, "--time", o.time_budget);
    if (s.contains("seq") && std::find(f.begin(), f.end(), "--seq") == f.end()) o.seq = s["seq"].get<int>();
    restore_setting(s, "batch", f, "--batch", o.batch);
    if (s.contains("lr") && !o.lr) o.lr = s["lr"].get<float>();
    restore_setting(s, "epsilon", f, "--epsilon", o.epsilon);
    restore_setting(s, "min_lr_frac", f, "--min-lr-frac", o.min_lr_frac);
    restore_setting(s, "warmup", f, "--warmup", o.warmup);
    restore_setting(s, "weight_decay", f, "--wd", o.weight_decay);
    restore_setting(s, "zo_samples", f, "--zo-samples", o.zo_samples);
    restore_setting(s, "exact_restore", f, "--restore", o.exact_restore);
    restore_setting(s, "eval_every", f, "--eval-every", o.eval_every);
    restore_setting(s, "eval_windows", f, "--eval-windows", o.eval_windows);
    restore_setting(s, "full_vocab", f, "--full-vocab", o.full_vocab);
    std::string name;
    if (s.contains("direction")) {
        restore_setting(s, "direction", f, "--direction", name);
        if (!name.empty()) o.direction = parse_direction(name);
    }
    name.clear();
    restore_setting(s, "lora", f, "--lora", name);
    if (!name.empty()) o.lora = parse_lora_mode(name);
}

}  // namespace

TrainSummary train_mezo(const MezoOptions& options, const TrainCallbacks& cb, const std::atomic<bool>& stop) {
    const auto t_begin = Clock::now();
    MezoOptions o = options;

    // The model, and the adapters when tuning through LoRA.
    Checkpoint ck = load_run_model({o.preset, o.config_path, o.init, o.resume}, o.seed, /*load_moments=*/false);
    nlohmann::json resumed = nlohmann::json::object();
    if (!o.resume.empty()) {
        if (ck.metadata.contains("mezo")) {
            resumed = ck.metadata["mezo"];
            if (resumed.contains("settings")) restore_settings(o, resumed["settings"]);
        } else {
            cb.warn(o.resume + ": has no ane-mezo state; continuing from its step " + std::to_string(ck.state.step));
        }
        if (ck.lora && o.lora == LoraMode::None) o.lora = LoraMode::Split;
        cb.say("resuming " + o.resume + " at step " + std::to_string(ck.state.step));
    } else if (!o.init.empty()) {
        cb.say("initialized from " + o.init);
    }
    ck.adam.reset();
    ck.lora_adam.clear();
    ModelConfig& c = ck.weights.config;
    if (o.residual_scale) c.residual_scale = *o.residual_scale;
    const RunShape shape = resolve_run_shape(c.seq, o.init.empty() && o.resume.empty(), o.seq, o.context);
    c.seq = shape.context;
    c.validate("model");
    require(o.batch >= 1, "--batch must be at least 1");
    const RunBudget budget = RunBudget::resolve(o.steps, o.time_budget, o.stop_after);
    o.steps = budget.steps;
    require(o.epsilon > 0, "--epsilon must be positive");
    require(o.zo_samples >= 0, "--zo-samples must be 0 (two-sided) or a number of one-sided samples");
    if (o.lora != LoraMode::None && !ck.lora)
        ck.lora = Lora::init(c, o.lora_rank, parse_lora_targets(o.lora_targets), o.seed);
    require(o.lora != LoraMode::None || !ck.lora, "the checkpoint has LoRA adapters: tune them with --lora split or merge");
    if (!o.lr) o.lr = o.lora == LoraMode::None ? 1e-5f : 1e-4f;

    const int S = shape.window, B = o.batch;
    TrainData data = open_train_data(o.data, o.val, c.vocab, S, o.full_vocab);
    DeviceOptions device_opts = device_options(o.threads, o.ane_mode, o.gemm, o.precision);
    // A frozen base (LoRA-split) is baked into conv kernels once (spec §5.5); a trained base
    // changes every perturbation, so it goes through the dynamic-weight kernels.
    device_opts.bake_frozen_weights = o.lora == LoraMode::Split && device_opts.ane_mode == AneMode::full;
    auto device = make_device(o.device, device_opts);
    Transformer model(ck.weights, *device, B, data.map, /*for_training=*/false, S);
    std::optional<LoraMerger> merger;
    if (o.lora == LoraMode::Split) model.set_lora(&*ck.lora);
    if (o.lora == LoraMode::Merge) {
        merger.emplace(ck.weights, *ck.lora);
        merger->apply(ck.weights, *ck.lora);
    }
    const std::vector<ParamSpan> params = mezo_parameters(ck.weights, ck.lora ? &*ck.lora : nullptr);
    // After a sweep, what the forward pass reads must follow the trainable buffers.
    // In split mode the base is frozen (the RMS gains it trains are read in place).
    auto sync = [&] {
        if (merger) merger->apply(ck.weights, *ck.lora);
        if (o.lora != LoraMode::Split) model.weights_changed();
    };

    TrainSummary sum;
    sum.params = c.params();
    sum.trainable_params = total_size(params);
    sum.compact_vocab = data.map.compact_vocab();
    sum.device_description = device->describe();
    sum.mode = std::string("mezo-") + (o.lora == LoraMode::None ? "full" : o.lora == LoraMode::Merge ? "lora" : "lora-split") +
               (o.zo_samples > 0 ? "-one-sided" : "");
    cb.say("model: " + std::to_string(c.params()) + " parameters, dim " + std::to_string(c.dim) + ", " +
         std::to_string(c.layers) + " layers, window " + std::to_string(S) + " (context " + std::to_string(c.seq) +
         "); vocabulary " +
         std::to_string(data.map.compact_vocab()) + (o.full_vocab ? " (full)" : " (compact)"));
    cb.say("MeZO: " + sum.mode + ", " + std::to_string(sum.trainable_params) + " trainable parameters" +
         (ck.lora ? " (LoRA rank " + std::to_string(ck.lora->rank) + " on " + lora_targets_string(ck.lora->targets) +
                        " + RMS gains)"
                  : "") +
         "; lr " + std::to_string(*o.lr) + ", epsilon " + std::to_string(o.epsilon) +
         (o.zo_samples > 0 ? ", " + std::to_string(o.zo_samples) + " one-sided samples per step" : ""));
    // A two-sided Rademacher step keeps z as bits and sweeps it on all threads. Exact on the cpu
    // device (full-parameter): each product reads θ ± εz made just before it, nothing written
    // into θ. Arithmetic: two sweeps in place, the restore and the update deferred into the next
    // step's first.
    const bool two_sided_rademacher = o.direction == Direction::Rademacher && o.zo_samples == 0;
    const bool viewed = two_sided_rademacher && o.exact_restore && o.lora == LoraMode::None && device->name() == "cpu";
    const bool deferred = two_sided_rademacher && !o.exact_restore;
    cb.say(viewed     ? std::string("perturbations made per product as the forward reads the weights, never "
                                    "written into them: exact, no copy")
           : deferred ? "perturbations written into the weights and undone arithmetically, each restore and update "
                        "fused into the next step's first sweep (train_mezo's floats; no copy)"
           : o.exact_restore ? "perturbations undone from a copy of the trainable set (" +
                                   std::to_string(total_size(params) * 4 / 1000000) + " MB): bit-exact"
                             : "perturbations undone arithmetically (exact up to float rounding; no copy)");
    cb.say("data: " + std::to_string(data.train_tokens.size()) + " training tokens, " +
         std::to_string(data.val_tokens.size()) + " validation tokens; " + std::to_string(B * S) + " tokens per loss");
    cb.say("device: " + sum.device_description);

    // Data parallelism: the same z on every rank (the same seeds), each rank its own windows
    // (every N-th of the step's stream), and only the two losses of a step exchanged.
    const int ranks = dist::size(), rank = dist::rank();
    auto trainable_fingerprint = [&](std::uint64_t h) {
        for (const auto& p : params) h = dist::fingerprint(p.data, std::size_t(p.size) * sizeof(float), h);
        return h;
    };
    if (ranks > 1) {
        const std::string text = run_settings(o, S).dump() + " " + std::to_string(data.train_tokens.size());
        dist::require_same(trainable_fingerprint(dist::fingerprint(text.data(), text.size())),
                           "the model, the data or the flags they were started with");
        cb.say("data parallel: " + std::to_string(ranks) + " ranks of batch " + std::to_string(B) + ", " +
               std::to_string(ranks * B * S) + " tokens per loss; one number exchanged per forward pass");
    }
    WindowBatch batch(B, S, data.map);
    ValidationModel val_model(model, ck.weights, *device, o.threads, o.lora == LoraMode::Split ? &*ck.lora : nullptr);
    const std::vector<std::size_t> val_offsets =
        mezo_validation_offsets(0, data.val_tokens.size(), S, std::max(1, o.eval_windows));
    const LrSchedule schedule{*o.lr, o.warmup, o.steps, o.min_lr_frac};
    auto loss = [&] {
        const auto t0 = Clock::now();
        model.forward(batch.inputs(), B, S);
        double l = model.loss(batch.targets());
        sum.forward_seconds += seconds_since(t0);
        ++sum.forward_passes;
        dist::allreduce_sum(&l, 1);  // the mean over every rank's windows
        return l / ranks;
    };
    StepDirection direction;  // a two-sided step's z, drawn once and applied on all threads
    PerturbedWeights perturbed;
    // A viewed or deferred step leaves its update (and restore) to the next step's first sweep;
    // anything else that reads the weights (evaluation, saving, the end) has it applied first.
    bool unsynced = false;  // θ changed, or a change deferred, by such steps since the last sync
    auto settle = [&] {
        perturbed.flush();
        if (unsynced) sync();
        unsynced = false;
    };
    auto weights_stepped = [&] {
        if (viewed || deferred)
            unsynced = true;  // read through `perturbed`, or left at θ − εz, until settled
        else
            sync();
    };
    auto evaluate = [&] {
        settle();
        return validation_loss_across_ranks(val_model.model(), data.val_tokens, val_offsets, batch);
    };
    ParamSnapshot snapshot;
    const SpsaHooks hooks{loss, sync, o.exact_restore && !viewed ? &snapshot : nullptr};

    std::optional<double> best_val;
    if (resumed.contains("best_val_loss")) best_val = resumed["best_val_loss"].get<double>();
    std::int64_t tokens_seen = resumed.value("tokens_seen", std::int64_t(0));
    const double prior_train_ms = ck.state.cum_train_ms, prior_wall_ms = ck.state.cum_wall_ms;
    const auto t_loop = Clock::now();
    auto run_seconds = [&] { return prior_wall_ms / 1000.0 + seconds_since(t_loop); };
    float last_lr = budget.lr(schedule, std::max(0, ck.state.step - 1), run_seconds());
    auto save = [&](const std::string& path, double last_loss, bool merge) {
        settle();
        // Every rank must hold the same weights; rank 0 alone writes them.
        if (ranks > 1)
            dist::require_same(trainable_fingerprint(dist::fingerprint(nullptr, 0)),
                               "the weights at step " + std::to_string(ck.state.step) + " (the ranks have diverged)");
        if (!dist::is_root()) return;
        const auto t0 = Clock::now();
        ck.state.total_steps = budget.by_time() ? ck.state.step : o.steps;
        ck.state.lr = last_lr;
        ck.state.loss = float(last_loss);
        ck.metadata["mezo"] = {{"settings", run_settings(o, S)}, {"tokens_seen", tokens_seen}, {"data", o.data}, {"ranks", ranks}};
        if (best_val) ck.metadata["mezo"]["best_val_loss"] = *best_val;
        if (merger) merger->swap_base(ck.weights);  // save the base and the adapters, not their sum
        if (merge && ck.lora) {
            Checkpoint merged = ck;
            merge_lora(merged.weights, *merged.lora);
            merged.lora.reset();
            merged.metadata["mezo"]["merged"] = true;
            write_blzt(merged, path);
        } else {
            write_blzt(ck, path);
        }
        if (merger) merger->swap_base(ck.weights);
        sum.io_seconds += seconds_since(t0);
        sum.saved.push_back(path);
    };

    double last_loss = 0;
    for (;;) {
        // Rank 0 decides when to stop and the learning rate (both may follow its clock).
        // One reading of the clock decides; a run that stops on --time records that reading.
        const double now_s = run_seconds();
        double decision[2] = {stop.load() ? 2.0 : budget.done(ck.state.step, now_s, sum.steps_done) ? 1.0 : 0.0,
                              budget.lr(schedule, int(ck.state.step), now_s)};
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
        const double fwd_before = sum.forward_seconds;
        const long step = ck.state.step;
        const std::vector<std::size_t> offsets =
            mezo_window_offsets(o.seed, step, data.train_tokens.size(), S, B * ranks);
        for (int b = 0; b < B; ++b) batch.fill(data.train_tokens, offsets[std::size_t(b * ranks + rank)], b);
        const std::uint64_t seed = mezo_step_seed(o.seed, step);
        StepReport rep;
        rep.step = int(step) + 1;
        rep.total_steps = o.steps;
        rep.time_budget = o.time_budget;
        rep.lr = decision[1];
        last_lr = float(rep.lr);
        const float lr = float(rep.lr);
        std::vector<double> g_one_sided;
        if (o.zo_samples == 0) {  // the update is part of the step's last sweep
            const auto update = [&](const SpsaEstimate& est) {
                const bool finite = std::isfinite(est.loss_plus) && std::isfinite(est.proj_grad);
                return finite ? ZoUpdate{-lr * float(est.proj_grad), lr * o.weight_decay} : ZoUpdate{};
            };
            SpsaEstimate e;
            if (viewed) {
                model.set_weight_source(&perturbed);
                e = spsa_two_sided_viewed(params, seed, o.epsilon, loss, perturbed, update);
                model.set_weight_source(nullptr);
            } else if (deferred) {
                e = spsa_two_sided_in_place(params, seed, o.epsilon, hooks, perturbed, update);
            } else {
                e = spsa_two_sided_update(params, seed, o.epsilon, o.direction, hooks, direction, update);
            }
            rep.loss = e.loss_plus;
            rep.loss_minus = e.loss_minus;
            rep.proj_grad = e.proj_grad;
        } else {
            const double loss0 = loss();
            g_one_sided = spsa_one_sided(params, seed, o.zo_samples, o.epsilon, o.direction, loss0, hooks);
            double mean = 0;
            for (double gk : g_one_sided) mean += gk / double(g_one_sided.size());
            rep.loss = loss0;
            rep.proj_grad = mean;
        }
        if (!std::isfinite(rep.loss) || !std::isfinite(*rep.proj_grad)) {
            rep.skipped = true;
            ++sum.skipped_updates;
            cb.warn("step " + std::to_string(rep.step) + ": the loss is not finite; update skipped");
            weights_stepped();
        } else {
            if (o.zo_samples > 0) {
                // θ −= (lr / N) Σ g_k z_k, the decay applied once.
                const float n = float(g_one_sided.size());
                for (std::size_t k = 0; k < g_one_sided.size(); ++k)
                    zo_update(params, one_sided_seed(seed, int(k)), -lr * float(g_one_sided[k]) / n, o.direction,
                              k == 0 ? lr * o.weight_decay : 0.0f);
            }
            weights_stepped();
            last_loss = rep.loss;
        }
        ++ck.state.step;
        ++ck.state.cum_steps;
        ++sum.steps_done;
        const DeviceProfile& after = device->profile();
        sum.matmul_seconds += after.matmul_s - before.matmul_s;
        sum.attention_seconds += after.attention_s - before.attention_s;
        sum.elementwise_seconds += after.elementwise_s - before.elementwise_s;
        sum.kernel_seconds += after.kernel_s - before.kernel_s;
        sum.flops += (after.matmul_flops - before.matmul_flops) + (after.attention_flops - before.attention_flops);
        rep.step_seconds = seconds_since(t_step);
        sum.step_seconds += rep.step_seconds;
        sum.perturb_seconds += rep.step_seconds - (sum.forward_seconds - fwd_before);
        const std::int64_t step_tokens = std::int64_t(B) * S * ranks;
        tokens_seen += step_tokens;
        sum.tokens += step_tokens;
        ck.state.cum_train_ms = prior_train_ms + sum.step_seconds * 1000.0;
        // One reading of the clock for the saved total and the stop decision: a run that stops
        // on --time has recorded at least that time.
        rep.elapsed_seconds = seconds_since(t_loop);
        ck.state.cum_wall_ms = prior_wall_ms + rep.elapsed_seconds * 1000.0;
        rep.run_seconds = ck.state.cum_wall_ms / 1000.0;
        rep.tokens_per_second = double(sum.tokens) / std::max(1e-9, sum.step_seconds);
        rep.tokens_seen = tokens_seen;
        sum.final_loss = rep.loss;

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
                save(best_checkpoint_path(o.output), last_loss, false);
            }
        }
        if (cb.step) cb.step(rep);
        if (o.save_every > 0 && ck.state.step % o.save_every == 0 && !last) save(o.output, last_loss, false);
        if (last) break;  // judged once, so that the final validation is never skipped by the clock
    }
    save(o.output, last_loss, o.merge_output);
    sum.best_val_loss = best_val;
    sum.wall_seconds = seconds_since(t_begin);
    sum.kernel_report = device->kernel_report();
    return sum;
}

}  // namespace ane
