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
    std::string format = "raw";
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

}  // namespace ane::convert
