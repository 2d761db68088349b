// `ane-convert pack` (any model -> int8 + zlib/zstd artifact) and `unpack` (artifact -> BLZT).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/artifact.hpp"
#include "ane/model_file.hpp"
#include "ane/error.hpp"
#include "ane/file_checks.hpp"
#include "ane/log.hpp"
#include "commands.hpp"
#include "outputs.hpp"

namespace ane::convert {

void add_pack_command(CLI::App& app, PackOptions& o) {
    auto* cmd = app.add_subcommand("pack", "compress a model: int8 rows with fp16 scales, zlib or zstd");
    cmd->add_option("input", o.input, "a model file: BLZT, GGUF, Hugging Face, llama2.c")->required();
    cmd->add_option("-o,--output", o.output, "artifact to write (default: beside the input, model.bin -> model.int8.zlib or .int8.zstd)");
    cmd->add_option("--codec", o.codec, "zlib (default) or zstd")->check(CLI::IsMember({"zlib", "zstd"}));
    cmd->add_option("--level", o.level, "compression level (zlib 0-9, default 9; zstd 1-22, default 19)")
        ->check(CLI::Range(0, 22));
    cmd->add_flag("-f,--force", o.force, "overwrite an existing output");
    cmd->footer("Every 2-D tensor of more than 65,536 elements becomes int8 with one fp16 scale per row, clipped\n"
                "at the 99.99984th percentile of |w| in the row; the rest is kept as fp16.");
}

int run_pack(const PackOptions& opts) {
    PackOptions o = opts;
    const ArtifactCodec codec = parse_artifact_codec(o.codec);
    const int level = o.level >= 0 ? o.level : (codec == ArtifactCodec::Zlib ? 9 : 19);
    if (codec == ArtifactCodec::Zlib)
        require_usage(level <= 9, "--level ", level, " is outside zlib's range [0, 9]");
    else
        require_usage(level >= 1, "--level ", level, " is outside zstd's range [1, 22]");
    o.output = prepare_conversion(o.input, o.output, ".int8." + o.codec, o.force);
    const Checkpoint ck = load_model(o.input);
    const PackReport r = write_artifact(ck, o.output, codec, level);
    if (log::level() < log::Level::Info) return 0;
    std::printf("wrote %s: %llu bytes (%s level %d)\n", o.output.c_str(),
                static_cast<unsigned long long>(r.compressed_bytes), o.codec.c_str(), level);
    std::printf("ratio: %.2fx smaller than float32 (%llu bytes), %.2fx smaller than the int8 payload (%llu bytes)\n",
                double(r.float_bytes) / double(r.compressed_bytes), static_cast<unsigned long long>(r.float_bytes),
                double(r.payload_bytes) / double(r.compressed_bytes), static_cast<unsigned long long>(r.payload_bytes));
    std::printf("%-24s %-10s %14s %12s\n", "tensor", "encoding", "max |error|", "relative");
    double worst = 0;
    for (const auto& t : r.tensors) {
        const double rel = t.max_abs > 0 ? t.max_abs_error / t.max_abs : 0.0;
        worst = std::max(worst, rel);
        std::printf("%-24s %-10s %14.3g %12.3g\n", t.name.c_str(), t.encoding.c_str(), t.max_abs_error, rel);
    }
    std::printf("worst relative error (max |error| / max |w| of a tensor): %.3g\n", worst);
    return 0;
}

void add_unpack_command(CLI::App& app, ImportOptions& o) {
    auto* cmd = app.add_subcommand("unpack", "expand an int8 artifact back into a BLZT checkpoint");
    cmd->add_option("input", o.input, "the artifact")->required()->check(CLI::ExistingFile);
    cmd->add_option("-o,--output", o.output, "BLZT checkpoint to write (default: beside the input, model.int8.zlib -> model.bin)");
    cmd->add_flag("-f,--force", o.force, "overwrite an existing output");
}

int run_unpack(const ImportOptions& opts) {
    ImportOptions o = opts;
    o.output = prepare_conversion(o.input, o.output, ".bin", o.force);
    const Checkpoint ck = read_artifact(o.input);
    write_blzt(ck, o.output);
    if (log::level() < log::Level::Info) return 0;
    std::printf("wrote %s: %lld parameters\n", o.output.c_str(), static_cast<long long>(ck.weights.config.params()));
    return 0;
}

}  // namespace ane::convert
