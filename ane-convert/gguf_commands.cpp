// `ane-convert gguf` (GGUF -> BLZT) and `ane-convert export-gguf` (any model -> GGUF).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <cstdio>

#include "ane/checkpoint.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/gguf_tokenizer.hpp"
#include "ane/model_file.hpp"
#include "ane/progress.hpp"
#include "ane/model_tokenizer.hpp"
#include "ane/tokenizer.hpp"
#include "ane/file_checks.hpp"
#include "ane/log.hpp"
#include "commands.hpp"
#include "outputs.hpp"

namespace ane::convert {

void add_gguf_command(CLI::App& app, ImportOptions& o) {
    auto* cmd = app.add_subcommand("gguf", "convert a llama.cpp GGUF (llama architecture) to a BLZT checkpoint");
    cmd->add_option("input", o.input, "the .gguf file (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K tensors)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("-o,--output", o.output, "BLZT checkpoint to write (default: beside the input, model.gguf -> model.bin)");
    cmd->add_flag("-f,--force", o.force, "overwrite an existing output");
}

int run_gguf(const ImportOptions& opts) {
    ImportOptions o = opts;
    o.output = prepare_conversion(o.input, o.output, ".bin", o.force);
    Checkpoint ck = read_gguf_model(o.input);
    write_blzt(ck, o.output);
    if (log::level() < log::Level::Info) return 0;
    const ModelConfig& c = ck.weights.config;
    std::printf("wrote %s: %lld parameters, dim %d, %d layers, vocab %d, %s classifier%s\n", o.output.c_str(),
                static_cast<long long>(c.params()), c.dim, c.layers, c.vocab, c.tied ? "tied" : "untied",
                ck.tokenizer_gguf.empty() ? "" : ", with its vocabulary");
    std::printf("peak RSS: %.1f MB\n", peak_rss_bytes() / 1e6);
    return 0;
}

void add_export_gguf_command(CLI::App& app, ExportGgufOptions& o) {
    auto* cmd = app.add_subcommand("export-gguf", "write any model file as a llama.cpp GGUF (llama architecture)");
    cmd->add_option("input", o.input, "a model file: BLZT, GGUF, llama.c")->required()->check(CLI::ExistingFile);
    cmd->add_option("-o,--output", o.output, "the .gguf to write (default: beside the input, model.bin -> model.gguf; a .gguf input -> model.TYPE.gguf)");
    cmd->add_option("--type", o.type, "matrix encoding: f32, f16, q8_0 or q4_0 (norms stay f32; rows not a multiple of 32 stay f16)")
        ->check(CLI::IsMember({"f32", "f16", "q8_0", "q4_0"}));
    cmd->add_option("-t,--tokenizer", o.tokenizer,
                    "SentencePiece model to embed (default: the vocabulary the input carries)");
    cmd->add_flag("-f,--force", o.force, "overwrite an existing output");
}

int run_export_gguf(const ExportGgufOptions& opts) {
    ExportGgufOptions o = opts;
    o.output = resolve_output(o.input, o.output, o.input.ends_with(".gguf") ? "." + o.type + ".gguf" : ".gguf");
    FileChecks files(o.force);
    files.input(o.input, "the input");
    files.input(o.tokenizer, "--tokenizer");
    files.output(o.output, "-o/--output");
    announce_output(opts.output, o.output);
    const GgufExportType type = parse_gguf_export_type(o.type);
    Checkpoint ck = load_model(o.input);
    std::vector<std::pair<std::string, GgufValue>> tok_kv;
    std::string tok_source = "none";
    if (!o.tokenizer.empty()) {
        tok_kv = gguf_metadata_from_tokenizer(*load_tokenizer(o.tokenizer), ck.weights.config.vocab);
        tok_source = o.tokenizer;
    } else if (!ck.tokenizer_gguf.empty()) {
        tok_kv = gguf_tokenizer_metadata(GgufFile(ck.tokenizer_gguf, o.input + " (embedded vocabulary)"));
        tok_source = "carried from " + o.input;
    } else if (const auto embedded = embedded_tokenizer(ck, o.input)) {
        tok_kv = gguf_metadata_from_tokenizer(*embedded, ck.weights.config.vocab);
        tok_source = "carried from " + o.input;
    }
    // An instruct model's chat template goes along, as llama.cpp's converter writes it.
    if (!tok_kv.empty() && ck.tokenizer_gguf.empty() && !ck.tokenizer_config_json.empty()) {
        const auto config = nlohmann::json::parse(ck.tokenizer_config_json.begin(), ck.tokenizer_config_json.end(), nullptr, false);
        if (config.is_object() && config.value("chat_template", nlohmann::json()).is_string())
            tok_kv.push_back({"tokenizer.chat_template", GgufValue::of_string(config["chat_template"].get<std::string>())});
    }
    write_gguf_model(ck, tok_kv, type, o.output);
    if (log::level() < log::Level::Info) return 0;
    std::printf("wrote %s: llama architecture, %s, tokenizer: %s\n", o.output.c_str(), o.type.c_str(),
                tok_source.c_str());
    if (tok_kv.empty())
        std::printf("note: no tokenizer embedded; llama.cpp needs one (--tokenizer tok.model)\n");
    if (ck.weights.config.residual_scale != 1.0)
        std::printf("note: residual scale %g folded into attn_output and ffn_down\n", ck.weights.config.residual_scale);
    return 0;
}

}  // namespace ane::convert
