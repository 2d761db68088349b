#pragma once
// Backprop training: the step loop behind ane-train. Reports through callbacks so that the
// tool decides what the user sees.
#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"

namespace ane {

struct TrainOptions {
    // Model: exactly one of preset / config_path / init / resume.
    std::string preset, config_path, init, resume;
    std::optional<double> residual_scale;  // override α
    std::optional<int> seq;                // the training window (default: the model's context)
    std::optional<int> context;            // the context stored with the model (see resolve_run_shape)
    // Data.
    std::string data, val;
    bool full_vocab = false;  // softmax over every id, not the compact vocabulary
    // Backprop LoRA: adapters of this rank on lora_targets, trained with the RMS gains; base frozen.
    int lora_rank = 0;
    std::string lora_targets = "attn";
    // Run.
    std::string output;
    long seed = 42;
    int steps = 0;           // optimizer updates in total; 0 = none (neither budget: kDefaultSteps)
    double time_budget = 0;  // seconds of training in total (resumes included), 0 = none
    int batch = 8;           // sequences per micro-batch
    int accum = 1;           // micro-batches per update
    float lr = 3e-4f, min_lr_frac = 0.1f, clip = 1.0f, weight_decay = 0.1f, loss_scale = 256.0f;
    float beta1 = 0.9f, beta2 = 0.95f, adam_eps = 1e-8f;
    int warmup = 100;
    int eval_every = 100, eval_windows = 16;
    int save_every = 0;
    int stop_after = 0;  // end this invocation after N updates (saving, resumable); 0 = no limit
    std::string device = "cpu";
    std::string ane_mode = "full";
    std::string gemm = "auto";
    std::string precision = "fp32";
    int threads = 0;
    // Dynamic loss scaling: double the scale after N clean updates, halve it on an overflow
    // (0: the static --scale).
    int scale_growth = 0;
    // Flags given explicitly on the command line, which win over a resumed run's values.
    std::vector<std::string> explicit_flags;
};

struct StepReport {
    int step = 0, total_steps = 0;  // total_steps 0: a time budget alone
    double time_budget = 0;         // seconds, 0 = none
    double run_seconds = 0;         // the run's loop time so far, resumes included
    double loss = 0, grad_norm = 0, lr = 0;
    bool skipped = false;  // NaN/Inf loss or gradient: no update
    double step_seconds = 0, elapsed_seconds = 0;
    double tokens_per_second = 0;
    std::optional<double> val_loss;
    std::int64_t tokens_seen = 0;
    // MeZO: the loss of the opposite perturbation and the projected gradient (L+ - L-) / 2ε
    // (with --zo-samples, the mean of the one-sided estimates).
    std::optional<double> loss_minus, proj_grad;
    std::optional<double> loss_scale;  // dynamic loss scaling: the scale this step used
};

struct TrainSummary {
    int steps_done = 0, skipped_updates = 0;
    double final_loss = 0;
    std::optional<double> last_val_loss, best_val_loss;
    double wall_seconds = 0, step_seconds = 0;
    double matmul_seconds = 0, attention_seconds = 0, elementwise_seconds = 0, optimizer_seconds = 0, io_seconds = 0,
           eval_seconds = 0;
    double flops = 0;  // matrix-product and attention FLOPs of training steps
    std::int64_t tokens = 0;
    std::int64_t params = 0, trainable_params = 0;
    int compact_vocab = 0;
    bool interrupted = false;
    std::string device_description;
    std::string kernel_report;  // an ANE device's kernels and surfaces
    double kernel_seconds = 0;  // in ANE kernels (simulated: surfaces and interpreter)
    std::vector<std::string> saved;
    // MeZO: what a step costs in forward passes.
    std::string mode;  // "backprop", "backprop-lora", "mezo-full", "mezo-lora-split", ...
    std::int64_t forward_passes = 0;
    double forward_seconds = 0, perturb_seconds = 0;
};

struct TrainCallbacks {
    std::function<void(const std::string&)> info;       // one-off messages
    std::function<void(const StepReport&)> step;        // after every optimizer step
    std::function<void(const std::string&)> warning;
    // The one place where a step's gradients are complete (summed over micro-batches, still
    // loss-scaled): a data-parallel all-reduce goes here; tests inject faults here.
    std::function<void(Weights& grads, int step)> gradients_ready;

    void say(const std::string& s) const {
        if (info) info(s);
    }
    void warn(const std::string& s) const {
        if (warning) warning(s);
    }
};

// Runs training to the step or time budget, or until `stop` becomes true (Ctrl-C); saves
// checkpoints as it goes and at the end.
TrainSummary train(const TrainOptions& options, const TrainCallbacks& callbacks, const std::atomic<bool>& stop);

// The path of the best-by-validation checkpoint for an output path: model.bin -> model.best.bin.
std::string best_checkpoint_path(const std::string& output);

}  // namespace ane
