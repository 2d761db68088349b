// End-to-end tests of the ane-generate executable.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {
const std::string kGen = ANE_GENERATE_BIN;
}

TEST(CliGenerate, StreamsTextAndReportsSpeed) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    const std::string ref = test::shared_data("reference-outputs/stories260K_greedy_n256.json");
    ANE_REQUIRE_SHARED(gguf);
    const auto r = test::run(kGen + " " + gguf + " --temperature 0 -n 40 --threads 1");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << r.out;
    EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
    // The same seed, the same text; a prompt from stdin; prompts from a file as JSON lines.
    const std::string sampled = kGen + " " + gguf + " -n 30 --seed 5 --threads 1 -p 'The cat'";
    EXPECT_EQ(test::run(sampled).out, test::run(sampled).out);
    const auto piped = test::run("echo -n 'The dog' | " + kGen + " " + gguf + " -p - -n 10 --temperature 0");
    EXPECT_EQ(piped.exit_code, 0) << piped.err;
    test::TempDir dir;
    std::ofstream(dir.path("prompts.txt")) << "Once upon a time\nThe sun\n";
    const auto lines = test::run(kGen + " " + gguf + " --prompt-file " + dir.path("prompts.txt") + " -n 8 --temperature 0");
    ASSERT_EQ(lines.exit_code, 0) << lines.err;
    std::istringstream in(lines.out);
    int count = 0;
    for (std::string line; std::getline(in, line); ++count) {
        const auto j = nlohmann::json::parse(line);
        EXPECT_TRUE(j.contains("prompt") && j.contains("completion") && j.contains("prompt_tokens") &&
                    j.contains("generated_tokens"));
    }
    EXPECT_EQ(count, 2);
}

TEST(CliGenerate, EveryDecodeKernelAndThreadCountGivesTheGreedyText) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    ANE_REQUIRE_SHARED(gguf);
    for (const char* gemm : {"openblas", "auto"})
        for (int threads : {1, 2}) {
            const auto r = test::run(kGen + " " + gguf + " --temperature 0 -n 40 -v --gemm " + gemm + " --threads " +
                                     std::to_string(threads));
            ASSERT_EQ(r.exit_code, 0) << r.err;
            EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u)
                << gemm << ", " << threads << " threads: " << r.out;
            // The own kernel serves one token's products unless OpenBLAS is forced.
            EXPECT_EQ(r.err.find("matrix-vector products: own") != std::string::npos, std::string(gemm) == "auto")
                << r.err;
        }
}

// Every --weights encoding keeps stories260K's greedy opening, and -v says what ran.
TEST(CliGenerate, EveryWeightEncodingGivesTheGreedyOpening) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    ANE_REQUIRE_SHARED(gguf);
    for (const char* type : {"f32", "f16", "bf16", "q8_0", "q4_0"})
        for (int threads : {1, 2}) {
            const auto r = test::run(kGen + " " + gguf + " --temperature 0 -n 20 -v --weights " + type + " --threads " +
                                     std::to_string(threads));
            ASSERT_EQ(r.exit_code, 0) << r.err;
            EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u)
                << type << ", " << threads << " threads: " << r.out;
            std::string upper = type;
            for (char& ch : upper) ch = char(std::toupper(static_cast<unsigned char>(ch)));
            EXPECT_NE(r.err.find("weights: "), std::string::npos) << r.err;
            EXPECT_NE(r.err.find(upper + " x "), std::string::npos) << r.err;
        }
}

// --prompt-file decodes its prompts together (one product per step for all of them) and
// prints what one prompt at a time prints, in the file's order.
TEST(CliGenerate, PromptsDecodedTogetherGiveWhatEachGivesAlone) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    ANE_REQUIRE_SHARED(gguf);
    test::TempDir dir;
    std::ofstream(dir.path("prompts.txt")) << "Once upon a time\nThe sun\n\nTom and Lily went to the park\nThe dog\nA bird\n";
    for (const char* weights : {"f32", "q8_0"}) {
        const std::string base = kGen + " " + gguf + " --prompt-file " + dir.path("prompts.txt") +
                                  " -n 24 --temperature 0 --threads 2 --weights " + weights;
        const auto alone = test::run(base + " --parallel 1");
        const auto together = test::run(base + " --parallel 3");
        ASSERT_EQ(alone.exit_code, 0) << alone.err;
        ASSERT_EQ(together.exit_code, 0) << together.err;
        EXPECT_EQ(together.out, alone.out) << weights;
        EXPECT_EQ(std::count(together.out.begin(), together.out.end(), '\n'), 5);
    }
}

TEST(CliGenerate, ClearErrors) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    ANE_REQUIRE_SHARED(gguf);
    test::TempDir dir;
    auto expect_error = [&](const std::string& args, const std::string& fragment) {
        const auto r = test::run(kGen + " " + args);
        EXPECT_EQ(r.exit_code, 1) << args;
        EXPECT_EQ(r.err.rfind("ane-generate: error: ", 0), 0u) << r.err;
        EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    };
    std::string long_prompt;
    for (int i = 0; i < 300; ++i) long_prompt += "Once upon a time ";
    expect_error(gguf + " --ctx 64 -p '" + long_prompt + "'", "context holds 64");
    Checkpoint ck;
    ck.weights = test::random_weights(test::tiny_config(), 1);
    write_blzt(ck, dir.path("novocab.bin"));
    expect_error(dir.path("novocab.bin") + " -p hi", "carries no tokenizer");
    expect_error(gguf + " -p ''", "the prompt is empty");
    const auto piped = test::run("printf '' | " + kGen + " " + gguf + " -p -");
    EXPECT_EQ(piped.exit_code, 1);
    EXPECT_NE(piped.err.find("the prompt is empty"), std::string::npos) << piped.err;
    EXPECT_EQ(test::run(kGen + " --help").exit_code, 0);
    EXPECT_EQ(test::run(kGen).exit_code, 2);
}
