// ane-train: backprop training of Llama-family models, from scratch or from a checkpoint.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "ane/cli.hpp"
#include "ane/config.hpp"
#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/runtime.hpp"
#include "ane/tool_main.hpp"
#include "ane/file_io.hpp"
#include "ane/progress.hpp"
#include "ane/train/report.hpp"
#include "ane/train/trainer.hpp"

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_interrupt(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-train: backprop training of Llama-family models (AdamW, warmup + cosine, clipping)"};
    app.set_version_flag("--version", std::string("ane-train ") + ANE_VERSION);
    ane::TrainOptions o;
    std::string log_json;
    bool quiet = false, progress = false, force = false;
    double residual_scale = 0;
    int seq = 0;
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
                   "α multiplying both residual branches (default: 1/sqrt(2L) from scratch, the file's value otherwise)");
    bool no_deepnet = false;
    app.add_flag("--no-deepnet", no_deepnet, "α = 1 (AutoANE's flag; same as --residual-scale 1)");
    app.add_option("--seq", seq, "window length (default: the model's)");

    app.add_option("--data", o.data, "training token file (raw uint16 or shard)")->required();
    app.add_option("--val", o.val, "validation token file (default: the last 10% of --data)");
    app.add_flag("--full-vocab", o.full_vocab, "softmax over the whole vocabulary instead of the ids in the data");
    app.add_option("--lora-rank", o.lora_rank,
                   "backprop LoRA: train rank-R adapters (and the RMS gains) with the base frozen (default: off)");
    app.add_option("--lora-targets", o.lora_targets,
                   "projections that get adapters: attn (default), ffn, all, or a list like wq,wv");
    app.add_option("-o,--output", o.output, "checkpoint to write (BLZT v4 + trailer); the best one goes to NAME.best.EXT")
        ->required();
    app.add_flag("-f,--force", force, "overwrite an existing output checkpoint");

    app.add_option("--steps", o.steps, "optimizer updates to run in total (default 1000)");
    app.add_option("--time", o.time_budget, "stop after this many seconds of training (0 = no limit)");
    app.add_option("--stop-after", o.stop_after, "end this invocation after N updates, saving a resumable checkpoint");
    app.add_option("--batch", o.batch, "sequences per micro-batch (default 8)");
    app.add_option("--accum", o.accum, "micro-batches per optimizer update (default 1)");
    app.add_option("--lr", o.lr, "peak learning rate (default 3e-4)");
    app.add_option("--warmup", o.warmup, "linear warmup, in updates (default 100)");
    app.add_option("--min-lr-frac", o.min_lr_frac, "cosine floor as a fraction of --lr (default 0.1)");
    app.add_option("--clip", o.clip, "global L2 gradient clip, <= 0 disables (default 1.0)");
    app.add_option("--wd", o.weight_decay, "AdamW weight decay on matrices and embeddings (default 0.1)");
    app.add_option("--beta1", o.beta1, "AdamW beta1 (default 0.9)");
    app.add_option("--beta2", o.beta2, "AdamW beta2 (default 0.95)");
    app.add_option("--adam-eps", o.adam_eps, "AdamW epsilon (default 1e-8)");
    app.add_option("--scale", o.loss_scale, "loss scale, undone before the update (default 256)");
    app.add_option("--seed", o.seed, "initialization and data order (default 42)");
    app.add_option("--eval-every", o.eval_every, "validation loss every N updates and at the end (0 = never; default 100)");
    app.add_option("--eval-windows", o.eval_windows, "validation windows, the same ones every time (default 16)");
    app.add_option("--save-every", o.save_every, "also save the checkpoint every N updates (default: only at the end)");
    app.add_option("--device", o.device, "compute backend (default cpu)");
    app.add_option("--threads", o.threads, "threads for BLAS and kernels (default: all cores)");
    app.add_option("--log-json", log_json, "write one JSON object per update to this file");
    app.add_flag("--progress", progress, "show the progress line even when stderr is not a terminal");
    app.add_flag("-q,--quiet", quiet, "no progress line or messages; only the final report");
    app.footer("A step is one optimizer update: --accum micro-batches of --batch windows of --seq tokens.\n"
               "Ctrl-C saves the checkpoint and exits (code 130); --resume continues exactly.");

    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-train")) return *code;
    o.explicit_flags = ane::given_flags(app);
    if (residual_scale > 0) o.residual_scale = residual_scale;
    if (no_deepnet) o.residual_scale = 1.0;
    if (seq > 0) o.seq = seq;

    return ane::run_tool("ane-train", [&] {
        if (o.resume != o.output) ane::check_can_write(o.output, force);
        ane::JsonLinesLog json(log_json);
        ane::ProgressLine line(quiet ? 0 : (progress ? 1 : -1));
        std::signal(SIGINT, on_interrupt);
        std::signal(SIGTERM, on_interrupt);
        const ane::TrainCallbacks cb = ane::console_callbacks("ane-train", line, json, quiet, o.time_budget);
        const ane::TrainSummary s = ane::train(o, cb, g_stop);
        line.finish();
        if (s.interrupted) std::fprintf(stderr, "ane-train: interrupted; saved %s (resume with --resume)\n", o.output.c_str());
        std::fputs(ane::efficiency_report(s, o.output).c_str(), stdout);
        return s.interrupted ? 130 : 0;
    });
}
