#include "outputs.hpp"

#include <array>
#include <filesystem>
#include <string_view>

#include "ane/error.hpp"
#include "ane/file_checks.hpp"
#include "ane/log.hpp"

namespace ane::convert {

std::string output_beside(const std::string& input, const std::string& suffix) {
    std::string base = input;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    if (std::filesystem::path(base).filename() == "config.json") {  // a Hugging Face folder, named by it
        base = std::filesystem::path(base).parent_path().string();
        if (base.empty()) base = std::filesystem::current_path().filename().string();
    } else if (!std::filesystem::is_directory(base)) {
        static constexpr std::array<std::string_view, 8> kExtensions = {
            ".safetensors.index.json", ".safetensors", ".gguf", ".int8.zlib", ".int8.zstd", ".bin", ".blzt", ".txt"};
        for (const auto ext : kExtensions)
            if (base.size() > ext.size() && base.ends_with(ext)) {
                base.resize(base.size() - ext.size());
                break;
            }
    }
    return base + suffix;
}

std::string resolve_output(const std::string& input, const std::string& output, const std::string& suffix) {
    if (!output.empty()) return output;
    require_usage(input != "-", "reading standard input: give -o/--output");
    return output_beside(input, suffix);
}

void announce_output(const std::string& given, const std::string& chosen) {
    if (given.empty()) log::info("writing ", chosen, " (no -o given)");
}

std::string prepare_conversion(const std::string& input, const std::string& given, const std::string& suffix, bool force) {
    const std::string output = resolve_output(input, given, suffix);
    FileChecks files(force);
    files.input(input, "the input");
    files.output(output, "-o/--output");
    announce_output(given, output);
    return output;
}

}  // namespace ane::convert
