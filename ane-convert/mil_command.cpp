// ane-convert mil: the MIL programs and weight files an ANE device compiles for a model,
// written to a folder the way AutoANE lays out a compiled model (<kernel>/model.mil,
// <kernel>/weights/<file>.bin) with a manifest of every surface's layout.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "ane/cli.hpp"
#include "ane/error.hpp"
#include "ane/file_checks.hpp"
#include "ane/file_io.hpp"
#include "ane/log.hpp"
#include "ane/mil/kernel_set.hpp"
#include "ane/model_file.hpp"
#include "commands.hpp"
#include "outputs.hpp"

namespace ane::convert {

void add_mil_command(CLI::App& app, MilOptions& o) {
    CLI::App* cmd = app.add_subcommand("mil", "write the ANE kernels of a model: MIL programs, weight blobs, manifest");
    cmd->add_option("model", o.input, "any model file the suite reads")->required();
    cmd->add_option("-o,--output", o.output, "folder to write (default: beside the model, NAME-mil)");
    cmd->add_option("--ane-mode", o.mode, "the training kernels of this mode: full, matmul, cpu-bwd (default full)")
        ->check(CLI::IsMember({"full", "matmul", "cpu-bwd"}));
    cmd->add_flag("--conv", o.conv, "MeZO's kernels instead: per layer, Q/K/V, Wo and the FFN with the weights baked");
    cmd->add_option("--seq", o.seq, "sequence length S the kernels are compiled for (default: the model's context)")
        ->check(range::between(1, 1 << 16));
    cmd->add_flag("-f,--force", o.force, "overwrite files of an earlier run in the folder");
}

namespace {

nlohmann::ordered_json regions(const std::vector<mil::Region>& rs) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& r : rs)
        out.push_back({{"offset", r.offset}, {"width", r.width}, {"holds", r.holds}, {"staged_weights", r.weights}});
    return out;
}

void write_file(const std::filesystem::path& path, const void* data, std::size_t n) {
    std::filesystem::create_directories(path.parent_path());
    AtomicWriter w(path.string());
    w.write(data, n);
    w.commit();
}

}  // namespace

int run_mil(const MilOptions& opts) {
    MilOptions o = opts;
    o.output = resolve_output(o.input, o.output, "-mil");
    FileChecks files(o.force);
    files.input(o.input, "the model");
    files.output_directory(o.output, {"manifest.json"}, "-o/--output");
    announce_output(opts.output, o.output);
    const Checkpoint ck = load_model(o.input);
    const ModelConfig& c = ck.weights.config;
    const int S = o.seq > 0 ? o.seq : c.seq;
    const std::vector<mil::Kernel> kernels =
        o.conv ? mil::baked_kernels(ck.weights, S) : mil::training_kernels(c, parse_ane_mode(o.mode), S);
    nlohmann::ordered_json manifest = {{"model", o.input},
                               {"seq", S},
                               {"kind", o.conv ? "mezo-conv (weights baked)" : std::string("training, mode ") + o.mode},
                               {"surface_layout", "[1, C, 1, S] fp16, channel-major: element (c, s) at byte 2*(c*S + s)"},
                               {"kernels", nlohmann::ordered_json::array()}};
    const std::filesystem::path root(o.output);
    for (const auto& k : kernels) {
        write_file(root / k.name / "model.mil", k.text.data(), k.text.size());
        nlohmann::ordered_json blobs = nlohmann::ordered_json::array();
        for (const auto& [key, bytes] : k.blobs) {
            const std::string rel = key.substr(std::string("@model_path/").size());
            write_file(root / k.name / rel, bytes.data(), bytes.size());
            blobs.push_back(rel);
        }
        manifest["kernels"].push_back({{"name", k.name},
                                       {"program", k.name + "/model.mil"},
                                       {"weights", blobs},
                                       {"input", {1, k.in_channels, 1, k.in_spatial}},
                                       {"input_bytes", k.input_bytes()},
                                       {"input_row", regions(k.row)},
                                       {"output", {1, k.out_channels, 1, k.out_spatial}},
                                       {"output_bytes", k.output_bytes()},
                                       {"output_channels", regions(k.outputs)},
                                       {"hardware_warnings", mil::hardware_warnings(mil::parse_program(k.text, k.blobs))}});
    }
    const std::string text = manifest.dump(2) + "\n";
    write_file(root / "manifest.json", text.data(), text.size());
    if (log::level() >= log::Level::Info)
        std::printf("wrote %zu kernels (S = %d) to %s/: <kernel>/model.mil, <kernel>/weights/*.bin, manifest.json\n",
                    kernels.size(), S, o.output.c_str());
    return 0;
}

}  // namespace ane::convert
