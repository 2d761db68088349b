#pragma once
// Output names of ane-convert: -o when given, else a name beside the input that says what the
// file became (model.safetensors -> model.bin, model.bin -> model.int8.zlib, ...), announced
// on stderr.
#include <string>

namespace ane::convert {

// The input's path without its model-format extension (.safetensors, .index.json, .gguf,
// .bin, .blzt, .int8.zlib, .int8.zstd), then `suffix`; a folder keeps its whole name.
std::string output_beside(const std::string& input, const std::string& suffix);
// `output` if not empty, else output_beside(input, suffix).
std::string resolve_output(const std::string& input, const std::string& output, const std::string& suffix);
// Says which file a command writes when -o was not given (after its checks passed).
void announce_output(const std::string& given, const std::string& chosen);
// The whole preparation of a one-input, one-output conversion: the output's name, the checks
// of both files (FileChecks), and the announcement. Returns the output path.
std::string prepare_conversion(const std::string& input, const std::string& given, const std::string& suffix, bool force);

}  // namespace ane::convert
