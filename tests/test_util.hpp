#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ane/checkpoint.hpp"
#include "ane/weights.hpp"

namespace ane::test {

// A file under ../shared/data; tests that need one skip when it is absent.
std::string shared_data(const std::string& relative);

#define ANE_REQUIRE_SHARED(path)                                                                       \
    do {                                                                                               \
        if (!std::filesystem::exists(path))                                                            \
            GTEST_SKIP() << "shared test data not found: " << (path)                                   \
                         << " (clone the project with ../shared beside it to run this test)";          \
    } while (0)

// A fresh directory removed with everything in it when the object dies.
class TempDir {
public:
    TempDir();
    ~TempDir();
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

private:
    std::filesystem::path dir_;
};

struct RunResult {
    int exit_code = -1;
    std::string out, err;
};
// Runs a shell command, capturing stdout and stderr separately.
RunResult run(const std::string& command);

// A value from a tool report's "key: value" lines (throws naming the key when absent).
double report_value(const std::string& report, const std::string& key);

std::vector<std::uint8_t> read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes);

// A text (or its first `bytes`) as token files with stories260K's tokenizer, 10% held out.
// `ready` is false when the shared data is absent or the conversion failed.
struct TokenCorpus {
    TempDir dir;
    std::string train, val;
    bool ready = false;
    TokenCorpus(const std::string& text, std::size_t bytes);
};

// A token stream a small model can learn: four short phrases (ids 1-14) in random order.
std::vector<std::uint16_t> phrase_tokens(std::size_t n, unsigned seed);

// Small configurations and deterministic random weights for tests.
ModelConfig tiny_config(bool tied = true);
Weights random_weights(const ModelConfig& c, unsigned seed);

// A small model trained on the TinyStories excerpt tokenized with the parameter-golf 1024
// vocabulary (full softmax), and the token ids. Call ANE_REQUIRE_SHARED on
// text_model_inputs() first.
struct TextModel {
    Checkpoint ck;
    std::vector<std::uint16_t> ids;
};
std::vector<std::string> text_model_inputs();
TextModel train_text_model(const TempDir& dir, const ModelConfig& c, int steps, float lr, int threads = 0);

}  // namespace ane::test
