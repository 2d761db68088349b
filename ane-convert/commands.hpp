#pragma once
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ane::convert {

struct TokensOptions {
    std::string tokenizer;
    std::string output;
    std::string val_output;
    std::string format;  // empty: raw, or shard32 when the vocabulary needs it
    double val_fraction = 0.0;
    bool bos = true;
    bool force = false;
    std::vector<std::string> inputs;
};
void add_tokens_command(CLI::App& app, TokensOptions& opts);
int run_tokens(const TokensOptions& opts);

struct InfoOptions {
    std::string path;
    bool json = false;
};
void add_info_command(CLI::App& app, InfoOptions& opts);
int run_info(const InfoOptions& opts);

struct ImportOptions {
    std::string input, output;
    bool force = false;
};
void add_gguf_command(CLI::App& app, ImportOptions& opts);
int run_gguf(const ImportOptions& opts);

struct ExportGgufOptions {
    std::string input, output, type = "f32", tokenizer;
    bool force = false;
};
void add_export_gguf_command(CLI::App& app, ExportGgufOptions& opts);
int run_export_gguf(const ExportGgufOptions& opts);

void add_hf_command(CLI::App& app, ImportOptions& opts);
int run_hf(const ImportOptions& opts);

struct ExportHfOptions {
    std::string input, output, dtype = "f32";
    bool force = false;
};
void add_export_hf_command(CLI::App& app, ExportHfOptions& opts);
int run_export_hf(const ExportHfOptions& opts);

struct PackOptions {
    std::string input, output, codec = "zlib";
    int level = -1;  // default: 9 for zlib, 19 for zstd
    bool force = false;
};
void add_pack_command(CLI::App& app, PackOptions& opts);
int run_pack(const PackOptions& opts);
void add_unpack_command(CLI::App& app, ImportOptions& opts);
int run_unpack(const ImportOptions& opts);
void add_merge_lora_command(CLI::App& app, ImportOptions& opts);
int run_merge_lora(const ImportOptions& opts);

struct MilOptions {
    std::string input, output, mode = "full";
    int seq = 0;
    bool conv = false, force = false;
};
void add_mil_command(CLI::App& app, MilOptions& opts);
int run_mil(const MilOptions& opts);

}  // namespace ane::convert
