// `ane-convert hf` (Hugging Face safetensors -> BLZT) and `export-hf` (any model -> HF folder).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/safetensors.hpp"
#include "ane/model_file.hpp"
#include "ane/progress.hpp"
#include "ane/file_checks.hpp"
#include "ane/log.hpp"
#include "commands.hpp"
#include "outputs.hpp"

namespace ane::convert {

void add_hf_command(CLI::App& app, ImportOptions& o) {
    auto* cmd = app.add_subcommand("hf", "convert a Hugging Face Llama-family checkpoint (safetensors) to BLZT");
    cmd->add_option("input", o.input,
                    "a folder with config.json and model.safetensors (or a sharded index), or one of those files")
        ->required()
        ->check(CLI::ExistingPath);
    cmd->add_option("-o,--output", o.output, "BLZT checkpoint to write (default: beside the input, model.safetensors -> model.bin, FOLDER -> FOLDER.bin)");
    cmd->add_flag("-f,--force", o.force, "overwrite an existing output");
}

int run_hf(const ImportOptions& opts) {
    ImportOptions o = opts;
    o.output = prepare_conversion(o.input, o.output, ".bin", o.force);
    const auto t0 = std::chrono::steady_clock::now();
    Checkpoint ck = read_hf_model(o.input);
    write_blzt(ck, o.output);
    if (log::level() < log::Level::Info) return 0;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const ModelConfig& c = ck.weights.config;
    std::printf("wrote %s: %lld parameters, dim %d, %d layers, vocab %d, %s classifier, rope theta %g, eps %g\n",
                o.output.c_str(), static_cast<long long>(c.params()), c.dim, c.layers, c.vocab,
                c.tied ? "tied" : "untied", c.rope_theta, c.norm_eps);
    std::printf("%.1f MB of float32 in %.2f s (%.0f MB/s), peak RSS %.1f MB\n", c.params() * 4 / 1e6, s,
                c.params() * 4 / 1e6 / std::max(s, 1e-9), peak_rss_bytes() / 1e6);
    return 0;
}

void add_export_hf_command(CLI::App& app, ExportHfOptions& o) {
    auto* cmd = app.add_subcommand("export-hf", "write any model file as a Hugging Face LlamaForCausalLM folder");
    cmd->add_option("input", o.input, "a model file: BLZT, GGUF, llama2.c, safetensors")->required();
    cmd->add_option("-o,--output", o.output, "the folder to write (model.safetensors, config.json; default: beside the input, model.bin -> model-hf)");
    cmd->add_option("--dtype", o.dtype, "f32, f16 or bf16")->check(CLI::IsMember({"f32", "f16", "bf16"}));
    cmd->add_flag("-f,--force", o.force, "write into a folder that already has a model.safetensors");
}

int run_export_hf(const ExportHfOptions& opts) {
    ExportHfOptions o = opts;
    o.output = resolve_output(o.input, o.output, "-hf");
    const HfDtype dtype = parse_hf_dtype(o.dtype);
    FileChecks files(o.force);
    files.input(o.input, "the input");
    files.output_directory(o.output, {"model.safetensors", "config.json", "tokenizer.model", "tokenizer.json", "tokenizer_config.json"},
                           "-o/--output");
    announce_output(opts.output, o.output);
    const Checkpoint ck = load_model(o.input);
    write_hf_model(ck, o.output, dtype);
    if (log::level() < log::Level::Info) return 0;
    std::string tokenizer;
    for (const auto& [name, blob] : tokenizer_files(ck))
        if (!blob->empty() && name != "tokenizer.gguf") tokenizer += " and " + name;
    std::printf("wrote %s/model.safetensors (%s) and config.json%s\n", o.output.c_str(), o.dtype.c_str(),
                tokenizer.c_str());
    if (ck.weights.config.residual_scale != 1.0)
        std::printf("note: residual scale %g folded into o_proj and down_proj\n", ck.weights.config.residual_scale);
    return 0;
}

}  // namespace ane::convert
