// End-to-end tests of the ane-convert executable.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/token_file.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

const std::string kBin = ANE_CONVERT_BIN;

test::RunResult convert(const std::string& args) { return test::run(kBin + " " + args); }

void expect_one_line_error(const test::RunResult& r, const std::string& fragment) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("ane-convert: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
}

std::string write_text(const test::TempDir& dir, const std::string& name, const std::string& text) {
    std::ofstream(dir.path(name)) << text;
    return dir.path(name);
}

const std::string kSmallText =
    "Once upon a time, there was a little girl named Lily. She liked to play outside.\n"
    "One day she saw a big red ball in the park. She ran to it and kicked it high.\n";

}  // namespace

TEST(CliConvert, HelpVersionAndUsage) {
    auto r = convert("--help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("tokens"), std::string::npos);
    EXPECT_NE(r.out.find("info"), std::string::npos);
    r = convert("--version");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("ane-convert"), std::string::npos);
    EXPECT_EQ(convert("").exit_code, 2);
    EXPECT_EQ(convert("frobnicate").exit_code, 2);
    EXPECT_EQ(convert("tokens --bogus-flag").exit_code, 2);
    r = convert("tokens --help");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("--val-fraction"), std::string::npos);
}

TEST(CliConvert, TokensThenInfo) {
    const std::string model = test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model");
    ANE_REQUIRE_SHARED(model);
    test::TempDir dir;
    std::string text;
    for (int i = 0; i < 20; ++i) text += kSmallText;
    const std::string in = write_text(dir, "in.txt", text);
    auto r = convert("tokens -t " + model + " -o " + dir.path("train.bin") + " --val-fraction 0.1 --val-output " +
                     dir.path("val.bin") + " " + in);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("bytes per token"), std::string::npos) << r.out;
    const TokenFile train(dir.path("train.bin")), val(dir.path("val.bin"));
    EXPECT_EQ(train[0], 1);  // BOS
    const std::size_t total = train.size() + val.size();
    EXPECT_EQ(train.size(), std::size_t(double(total) * 0.9));
    train.check_vocab(1024);

    r = convert("info --json " + dir.path("train.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["format"], "tokens-raw");
    EXPECT_EQ(j["tokens"], train.size());
    r = convert("info " + dir.path("val.bin"));
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("tokens: " + std::to_string(val.size())), std::string::npos) << r.out;

    r = convert("tokens --format shard --no-bos -t " + model + " -o " + dir.path("shard.bin") + " " + in);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const TokenFile shard(dir.path("shard.bin"));
    EXPECT_EQ(shard.format(), TokenFormat::Shard);
    EXPECT_EQ(shard.size(), total - 1);
    EXPECT_EQ(nlohmann::json::parse(convert("info --json " + dir.path("shard.bin")).out)["format"], "tokens-shard");
}

TEST(CliConvert, NothingIsOverwrittenWithoutForce) {
    const std::string model = test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model");
    ANE_REQUIRE_SHARED(model);
    test::TempDir dir;
    const std::string in = write_text(dir, "in.txt", kSmallText);
    const std::string out = write_text(dir, "out.bin", "precious");
    expect_one_line_error(convert("tokens -t " + model + " -o " + out + " " + in), "already exists");
    EXPECT_EQ(test::read_bytes(out).size(), 8u);
    EXPECT_EQ(convert("tokens --force -t " + model + " -o " + out + " " + in).exit_code, 0);
    EXPECT_NE(test::read_bytes(out).size(), 8u);
}

TEST(CliConvert, BadInputIsOneLineAndExitOne) {
    test::TempDir dir;
    const std::string in = write_text(dir, "in.txt", kSmallText);
    expect_one_line_error(convert("tokens -t " + dir.path("missing.model") + " -o " + dir.path("o.bin") + " " + in),
                          "missing.model");
    EXPECT_FALSE(std::filesystem::exists(dir.path("o.bin")));
    write_text(dir, "odd.bin", "abc");
    expect_one_line_error(convert("info " + dir.path("odd.bin")), "odd.bin");
    write_text(dir, "empty.bin", "");
    expect_one_line_error(convert("info " + dir.path("empty.bin")), "empty.bin");
    expect_one_line_error(convert("info " + dir.path("nope.bin")), "nope.bin");

    Checkpoint ck;
    ck.weights = test::random_weights(test::tiny_config(), 3);
    write_blzt(ck, dir.path("m.blzt"));
    auto bytes = test::read_bytes(dir.path("m.blzt"));
    bytes.resize(500);
    test::write_bytes(dir.path("cut.blzt"), bytes);
    expect_one_line_error(convert("info " + dir.path("cut.blzt")), "truncated");
}

TEST(CliConvert, InfoDescribesBlztAndLlama2c) {
    test::TempDir dir;
    Checkpoint ck;
    ck.weights = test::random_weights(test::tiny_config(false), 3);
    ck.state.step = 17;
    write_blzt(ck, dir.path("m.blzt"));
    auto r = convert("info --json " + dir.path("m.blzt"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["format"], "blzt");
    EXPECT_EQ(j["dim"], 8);
    EXPECT_EQ(j["hidden"], 12);
    EXPECT_EQ(j["heads"], 4);
    EXPECT_EQ(j["kv_heads"], 2);
    EXPECT_EQ(j["head_dim"], 4);
    EXPECT_EQ(j["layers"], 2);
    EXPECT_EQ(j["vocab"], 11);
    EXPECT_EQ(j["tied"], false);
    EXPECT_EQ(j["state"]["step"], 17);
    EXPECT_EQ(j["tensors"].size(), 21u);
    r = convert("info " + dir.path("m.blzt"));
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("untied classifier"), std::string::npos) << r.out;

    const std::string stories = test::shared_data("stories260K-llama2c/stories260K.bin");
    ANE_REQUIRE_SHARED(stories);
    j = nlohmann::json::parse(convert("info --json " + stories).out);
    EXPECT_EQ(j["format"], "llama2c");
    EXPECT_EQ(j["params"], 260032);
}

TEST(CliConvert, ModelConversionsChain) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    ANE_REQUIRE_SHARED(gguf);
    test::TempDir dir;
    auto ok = [&](const std::string& args) {
        const auto r = convert(args);
        EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.err;
        return r;
    };
    ok("gguf " + gguf + " -o " + dir.path("a.blzt"));
    ok("export-hf " + dir.path("a.blzt") + " -o " + dir.path("hf"));
    ok("hf " + dir.path("hf") + " -o " + dir.path("b.blzt"));
    ok("pack " + dir.path("a.blzt") + " -o " + dir.path("b.int8.zlib"));
    ok("unpack " + dir.path("b.int8.zlib") + " -o " + dir.path("c.blzt"));
    ok("export-gguf " + dir.path("c.blzt") + " -o " + dir.path("c.gguf") + " --type f16");
    EXPECT_TRUE(read_blzt(dir.path("a.blzt")).weights.bit_equal(read_blzt(dir.path("b.blzt")).weights));
    for (const auto& f : {dir.path("hf"), dir.path("b.int8.zlib"), dir.path("c.gguf")}) {
        const auto j = nlohmann::json::parse(ok("info --json " + f).out);
        EXPECT_EQ(j["dim"], 64) << f;
        EXPECT_EQ(j["kv_heads"], 4) << f;
    }
    // The vocabulary travelled from the source GGUF through BLZT and the artifact.
    const auto j = nlohmann::json::parse(ok("info --json " + dir.path("c.gguf")).out);
    ASSERT_TRUE(j["metadata"].contains("tokenizer.ggml.tokens")) << j["metadata"].dump();
    EXPECT_NE(j["metadata"]["tokenizer.ggml.tokens"].get<std::string>().find("512 items"), std::string::npos);
    expect_one_line_error(convert("gguf " + test::shared_data("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf") + " -o " +
                                  dir.path("x.blzt")),
                          "no tensors");
    EXPECT_FALSE(std::filesystem::exists(dir.path("x.blzt")));
}
