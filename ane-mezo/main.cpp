// ane-mezo: zeroth-order (MeZO) training with forward passes only, full-parameter or LoRA.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "ane/cli.hpp"
#include "ane/config.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/mezo/mezo_trainer.hpp"
#include "ane/runtime.hpp"
#include "ane/tool_main.hpp"
#include "ane/device/device.hpp"
#include "ane/train/console_run.hpp"

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-mezo: zeroth-order (MeZO/SPSA) training with forward passes only, full-parameter or LoRA"};
    app.set_version_flag("--version", std::string("ane-mezo ") + ANE_VERSION);
    ane::MezoOptions o;
    std::string log_json, direction = "rademacher", lora_mode;
    ane::Verbosity verbosity;
    bool progress = false, force = false, no_deepnet = false;
    double residual_scale = 0;
    float lr = 0;
    int seq = 0, context = 0;
    namespace r = ane::range;
    std::string presets;
    for (const auto& n : ane::preset_names()) presets += (presets.empty() ? "" : ", ") + n;

    auto* model = app.add_option_group("model", "where the model comes from (exactly one)");
    model->add_option("--init", o.init, "fine-tune the weights of any model file the suite reads")->check(CLI::ExistingFile);
    model->add_option("--resume", o.resume, "continue an ane-mezo checkpoint exactly (adapters included)")
        ->check(CLI::ExistingFile);
    model->add_option("--preset", o.preset, "a named shape, trained from scratch: " + presets);
    model->add_option("--config", o.config_path, "a model.json, trained from scratch")->check(CLI::ExistingFile);
    model->require_option(1);
    app.add_option("--residual-scale", residual_scale,
                   "α multiplying both residual branches (default: 1/sqrt(2L) from scratch, the file's value otherwise)")
        ->check(r::positive());
    app.add_flag("--no-deepnet", no_deepnet, "α = 1 (same as --residual-scale 1)");
    app.add_option("--seq", seq, "training window in tokens (default: the model's context)")->check(r::between(1, 1 << 20));
    app.add_option("--context", context,
                   "context length stored with the model (default: from scratch the window; otherwise the file's, "
                   "grown to the window if that is longer)")
        ->check(r::between(1, 1 << 20));

    app.add_option("--data", o.data, "training token file (raw uint16 or shard)")->required();
    app.add_option("--val", o.val, "validation token file (default: the last 10% of --data)");
    app.add_flag("--full-vocab", o.full_vocab, "softmax over the whole vocabulary instead of the ids in the data");
    app.add_option("-o,--output", o.output, "checkpoint to write (BLZT v4 + trailer, adapters included); the best one goes to NAME.best.EXT")
        ->required();
    app.add_flag("-f,--force", force, "overwrite existing outputs (the checkpoint, NAME.best.EXT, the --log-json file)");

    app.add_option("--lora", lora_mode,
                   "tune LoRA adapters instead of every weight: split (correction added in the forward pass, base "
                   "untouched) or merge (W = W_base + B·A rebuilt after every change)")
        ->check(CLI::IsMember({"split", "merge"}));
    app.add_option("--lora-rank", o.lora_rank, "adapter rank (default 8)")->check(r::between(1, 65536));
    app.add_option("--lora-targets", o.lora_targets, "projections with adapters: attn (default), ffn, all, or a list like wq,wv")
        ->check(ane::lora_targets_problem);
    app.add_flag("--merge", o.merge_output, "fold the adapters into the weights of the final checkpoint (for export)");

    ane::add_budget_flags(app, o.steps, o.time_budget, o.stop_after, "steps");
    app.add_option("--batch", o.batch, "windows per loss (default 1, as train_mezo)")->check(r::between(1, 1 << 16));
    app.add_option("--lr", lr, "peak learning rate (default 1e-5 full-parameter, 1e-4 LoRA)")->check(r::between(0, 10));
    app.add_option("--epsilon,--eps", o.epsilon, "perturbation size ε (default 1e-3)")->check(r::between(0, 1, true));
    app.add_option("--direction", direction, "perturbation distribution: rademacher (default) or gaussian")
        ->check(CLI::IsMember({"rademacher", "gaussian"}));
    app.add_option("--zo-samples", o.zo_samples,
                   "N one-sided estimates per step sharing one unperturbed loss (FZOO); 0 = two-sided SPSA (default)")
        ->check(r::between(0, 1024));
    std::string restore = "copy";
    app.add_option("--restore", restore,
                   "undo a perturbation exactly (copy, the default: from a copy of the trainable weights, or on "
                   "the cpu device, full-parameter two-sided Rademacher, by never writing it: each product reads "
                   "the weights perturbed as it goes) or by adding εz back (arithmetic: train_mezo's way and "
                   "floats, exact only up to rounding, no extra memory; two-sided Rademacher steps fuse each "
                   "restore and update into the next step's first sweep, the fastest)")
        ->check(CLI::IsMember({"copy", "arithmetic"}));
    app.add_option("--warmup", o.warmup, "linear warmup, in steps (default 0)")->check(r::non_negative());
    app.add_option("--min-lr-frac", o.min_lr_frac, "cosine floor as a fraction of --lr (default 0.1)")
        ->check(r::between(0, 1));
    app.add_option("--wd", o.weight_decay, "decoupled weight decay on matrices, embeddings and adapters (default 0)")
        ->check(r::between(0, 1));
    app.add_option("--seed", o.seed, "perturbations, data windows and initialization (default 42)");
    ane::add_run_flags(app, {o.eval_every, o.eval_windows, o.save_every, o.device, o.ane_mode, o.gemm, o.precision, o.threads, log_json}, "steps");
    app.add_flag("--progress", progress, "show the progress line even when stderr is not a terminal");
    ane::add_verbosity_flags(app, verbosity);
    app.footer("A step: perturb the trainable weights by +εz, loss; by -2εz, loss; restore; w -= lr·g·z with\n"
               "g = (L+ - L-)/2ε, z regenerated from the step's seed. Ctrl-C saves and exits (code 130).");

    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-mezo")) return *code;
    verbosity.apply();
    o.explicit_flags = ane::given_flags(app);
    if (residual_scale > 0) o.residual_scale = residual_scale;
    if (no_deepnet) o.residual_scale = 1.0;
    if (seq > 0) o.seq = seq;
    if (context > 0) o.context = context;
    if (app.count("--lr") > 0) o.lr = lr;

    return ane::run_tool("ane-mezo", [&] {
        o.direction = ane::parse_direction(direction);
        o.exact_restore = restore == "copy";
        if (!lora_mode.empty()) o.lora = ane::parse_lora_mode(lora_mode);
        ane::require_usage(o.lora != ane::LoraMode::None ||
                               (app.count("--lora-rank") == 0 && app.count("--lora-targets") == 0 && !o.merge_output) ||
                               !o.resume.empty(),
                           "--lora-rank, --lora-targets and --merge need --lora split or --lora merge");
        ane::check_device(o.device);
        (void)ane::device_options(o.threads, o.ane_mode, o.gemm, o.precision);  // ANE_SIM_ACCUM, before any work
        const ane::RunFiles files{{o.preset, o.config_path, o.init, o.resume},
                                  o.data, o.val, o.output, log_json,
                                  !(app.count("--eval-every") > 0 && o.eval_every == 0), force};
        return ane::run_on_console("ane-mezo", files, verbosity.quiet, progress,
                                   [&](const ane::TrainCallbacks& cb, const std::atomic<bool>& stop) {
                                       return ane::train_mezo(o, cb, stop);
                                   });
    });
}
