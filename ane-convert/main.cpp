// ane-convert: moves models and data between the formats the suite reads and writes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "ane/cli.hpp"
#include "ane/error.hpp"
#include "ane/runtime.hpp"
#include "ane/tool_main.hpp"
#include "ane/log.hpp"
#include "commands.hpp"

int main(int argc, char** argv) {
    ane::prepare_runtime(argc, argv);
    CLI::App app{"ane-convert: convert models and data between formats (BLZT, GGUF, Hugging Face, llama2.c, token files)"};
    app.set_version_flag("--version", std::string("ane-convert ") + ANE_VERSION);
    app.require_subcommand(1);
    app.fallthrough();  // -q and -v after the subcommand too
    ane::Verbosity verbosity;
    ane::add_verbosity_flags(app, verbosity);

    ane::convert::TokensOptions tokens;
    ane::convert::InfoOptions info;
    ane::convert::add_tokens_command(app, tokens);
    ane::convert::add_info_command(app, info);
    ane::convert::ImportOptions gguf;
    ane::convert::add_gguf_command(app, gguf);
    ane::convert::ExportGgufOptions export_gguf;
    ane::convert::add_export_gguf_command(app, export_gguf);
    ane::convert::ImportOptions hf;
    ane::convert::add_hf_command(app, hf);
    ane::convert::ExportHfOptions export_hf;
    ane::convert::add_export_hf_command(app, export_hf);
    ane::convert::PackOptions pack;
    ane::convert::add_pack_command(app, pack);
    ane::convert::ImportOptions unpack;
    ane::convert::add_unpack_command(app, unpack);
    ane::convert::ImportOptions merge_lora;
    ane::convert::add_merge_lora_command(app, merge_lora);
    ane::convert::MilOptions mil;
    ane::convert::add_mil_command(app, mil);

    if (const auto code = ane::parse_command_line(app, argc, argv, "ane-convert")) return *code;
    verbosity.apply();
    return ane::run_tool("ane-convert", [&] {
        if (app.got_subcommand("tokens")) return ane::convert::run_tokens(tokens);
        if (app.got_subcommand("info")) return ane::convert::run_info(info);
        if (app.got_subcommand("gguf")) return ane::convert::run_gguf(gguf);
        if (app.got_subcommand("export-gguf")) return ane::convert::run_export_gguf(export_gguf);
        if (app.got_subcommand("hf")) return ane::convert::run_hf(hf);
        if (app.got_subcommand("export-hf")) return ane::convert::run_export_hf(export_hf);
        if (app.got_subcommand("pack")) return ane::convert::run_pack(pack);
        if (app.got_subcommand("unpack")) return ane::convert::run_unpack(unpack);
        if (app.got_subcommand("merge-lora")) return ane::convert::run_merge_lora(merge_lora);
        if (app.got_subcommand("mil")) return ane::convert::run_mil(mil);
        return 2;
    });
}
