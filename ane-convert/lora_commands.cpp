// merge-lora: fold a checkpoint's LoRA adapters into its weights, for export or plain use.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/file_checks.hpp"
#include "ane/log.hpp"
#include "commands.hpp"
#include "outputs.hpp"

namespace ane::convert {

void add_merge_lora_command(CLI::App& app, ImportOptions& o) {
    auto* cmd = app.add_subcommand("merge-lora", "fold a checkpoint's LoRA adapters into its weights (W += B·A)");
    cmd->add_option("input", o.input, "BLZT checkpoint with adapters (from ane-mezo --lora or ane-train --lora-rank)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("-o,--output", o.output, "BLZT checkpoint to write, without adapters (default: beside the input, model.bin -> model.merged.bin)");
    cmd->add_flag("-f,--force", o.force, "overwrite an existing output");
}

int run_merge_lora(const ImportOptions& opts) {
    ImportOptions o = opts;
    o.output = prepare_conversion(o.input, o.output, ".merged.bin", o.force);
    Checkpoint ck = read_blzt(o.input);
    require(ck.lora.has_value(), o.input, ": has no LoRA adapters to merge");
    const int rank = ck.lora->rank;
    const std::string targets = lora_targets_string(ck.lora->targets);
    merge_lora(ck.weights, *ck.lora);
    ck.lora.reset();
    ck.lora_adam.clear();
    ck.metadata["merged_lora"] = {{"rank", rank}, {"targets", targets}, {"from", o.input}};
    write_blzt(ck, o.output);
    if (log::level() < log::Level::Info) return 0;
    std::printf("wrote %s: rank-%d adapters on %s merged into the weights\n", o.output.c_str(), rank, targets.c_str());
    return 0;
}

}  // namespace ane::convert
