// ane-train: backprop training of Llama-family models, from scratch or from a checkpoint.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "ane/cli.hpp"
#include "ane/config.hpp"
#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/runtime.hpp"
#include "ane/tool_main.hpp"
#include "ane/file_io.hpp"
#include "ane/mezo/lora.hpp"
#include "ane/train/console_run.hpp"
#include "ane/train/trainer.hpp"

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-train: backprop training of Llama-family models (AdamW, warmup + cosine, clipping)"};
    app.set_version_flag("--version", std::string("ane-train ") + ANE_VERSION);
    ane::TrainOptions o;
    std::string log_json;
    ane::Verbosity verbosity;
    bool progress = false, force = false;
    double residual_scale = 0;
    int seq = 0, context = 0;
    namespace r = ane::range;
    std::string presets;
    for (const auto& n : ane::preset_names()) presets += (presets.empty() ? "" : ", ") + n;

    auto* model = app.add_option_group("model", "where the model comes from (exactly one)");
    model->add_option("--preset", o.preset, "a named shape, trained from scratch: " + presets);
    model->add_option("--config", o.config_path, "a model.json, trained from scratch")->check(CLI::ExistingFile);
    model->add_option("--init", o.init, "start from the weights of any model file the suite reads")
        ->check(CLI::ExistingFile);
    model->add_option("--resume", o.resume, "continue a run exactly from an ane-train checkpoint")
        ->check(CLI::ExistingFile);
    model->require_option(1);
    app.add_option("--residual-scale", residual_scale,
                   "α multiplying both residual branches (default: 1/sqrt(2L) from scratch, the file's value otherwise)")
        ->check(r::positive());
    bool no_deepnet = false;
    app.add_flag("--no-deepnet", no_deepnet, "α = 1 (AutoANE's flag; same as --residual-scale 1)");
    app.add_option("--seq", seq, "training window in tokens (default: the model's context)")->check(r::between(1, 1 << 20));
    app.add_option("--context", context,
                   "context length stored with the model (default: from scratch the window; otherwise the file's, "
                   "grown to the window if that is longer: fine-tuning never shrinks it)")
        ->check(r::between(1, 1 << 20));

    app.add_option("--data", o.data, "training token file (raw uint16 or shard)")->required();
    app.add_option("--val", o.val, "validation token file (default: the last 10% of --data)");
    app.add_flag("--full-vocab", o.full_vocab, "softmax over the whole vocabulary instead of the ids in the data");
    app.add_option("--lora-rank", o.lora_rank,
                   "backprop LoRA: train rank-R adapters (and the RMS gains) with the base frozen (default: off)")
        ->check(r::between(1, 65536));
    app.add_option("--lora-targets", o.lora_targets,
                   "projections that get adapters: attn (default), ffn, all, or a list like wq,wv")
        ->check(ane::lora_targets_problem);
    app.add_option("-o,--output", o.output, "checkpoint to write (BLZT v4 + trailer); the best one goes to NAME.best.EXT")
        ->required();
    app.add_flag("-f,--force", force, "overwrite existing outputs (the checkpoint, NAME.best.EXT, the --log-json file)");

    ane::add_budget_flags(app, o.steps, o.time_budget, o.stop_after, "updates");
    app.add_option("--batch", o.batch, "sequences per micro-batch (default 8)")->check(r::between(1, 1 << 16));
    app.add_option("--accum", o.accum, "micro-batches per optimizer update (default 1)")->check(r::between(1, 1 << 16));
    app.add_option("--lr", o.lr, "peak learning rate (default 3e-4)")->check(r::between(0, 10));
    app.add_option("--warmup", o.warmup, "linear warmup, in updates (default 100)")->check(r::non_negative());
    app.add_option("--min-lr-frac", o.min_lr_frac, "cosine floor as a fraction of --lr (default 0.1)")
        ->check(r::between(0, 1));
    app.add_option("--clip", o.clip, "global L2 gradient clip, 0 disables (default 1.0)")->check(r::non_negative());
    app.add_option("--wd", o.weight_decay, "AdamW weight decay on matrices and embeddings (default 0.1)")
        ->check(r::between(0, 1));
    app.add_option("--beta1", o.beta1, "AdamW beta1 (default 0.9)")->check(r::between(0, 1, false, true));
    app.add_option("--beta2", o.beta2, "AdamW beta2 (default 0.95)")->check(r::between(0, 1, false, true));
    app.add_option("--adam-eps", o.adam_eps, "AdamW epsilon (default 1e-8)")->check(r::between(0, 1, true));
    app.add_option("--scale", o.loss_scale, "loss scale, undone before the update (default 256)")
        ->check(r::between(0, 1e30, true));
    app.add_option("--scale-growth", o.scale_growth,
                   "dynamic loss scaling: halve the scale on an overflow, double it after N clean updates (default 0: "
                   "the static --scale)")
        ->check(r::between(0, 1 << 30));
    app.add_option("--seed", o.seed, "initialization and data order (default 42)");
    ane::add_run_flags(app, {o.eval_every, o.eval_windows, o.save_every, o.device, o.ane_mode, o.gemm, o.precision, o.threads, log_json}, "updates");
    app.add_flag("--progress", progress, "show the progress line even when stderr is not a terminal");
    ane::add_verbosity_flags(app, verbosity);
    app.footer("A step is one optimizer update: --accum micro-batches of --batch windows of --seq tokens.\n"
               "Ctrl-C saves the checkpoint and exits (code 130); --resume continues exactly.");

    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-train")) return *code;
    verbosity.apply();
    o.explicit_flags = ane::given_flags(app);
    if (residual_scale > 0) o.residual_scale = residual_scale;
    if (no_deepnet) o.residual_scale = 1.0;
    if (seq > 0) o.seq = seq;
    if (context > 0) o.context = context;

    return ane::run_tool("ane-train", [&] {
        ane::check_device(o.device);
        (void)ane::device_options(o.threads, o.ane_mode, o.gemm, o.precision);  // ANE_SIM_ACCUM, before any work
        const ane::RunFiles files{{o.preset, o.config_path, o.init, o.resume},
                                  o.data, o.val, o.output, log_json,
                                  !(app.count("--eval-every") > 0 && o.eval_every == 0), force};
        return ane::run_on_console("ane-train", files, verbosity.quiet, progress,
                                   [&](const ane::TrainCallbacks& cb, const std::atomic<bool>& stop) {
                                       return ane::train(o, cb, stop);
                                   });
    });
}
