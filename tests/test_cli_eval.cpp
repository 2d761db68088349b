// End-to-end tests of the ane-eval executable.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/formats/artifact.hpp"
#include "ane/token_file.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {
const std::string kEval = ANE_EVAL_BIN;
}

TEST(CliEval, JsonReportAndErrors) {
    const std::string tok = test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model");
    ANE_REQUIRE_SHARED(tok);
    test::TempDir dir;
    ModelConfig c = test::tiny_config(true);
    c.vocab = 1024;
    c.seq = 32;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 2);
    write_blzt(ck, dir.path("m.bin"));
    write_artifact(ck, dir.path("m.int8.zlib"), ArtifactCodec::Zlib, 9);
    std::vector<std::uint16_t> tokens;
    for (int i = 0; i < 500; ++i) tokens.push_back(std::uint16_t(100 + (i * 37) % 800));
    write_token_file(dir.path("val.bin"), tokens, TokenFormat::Raw);

    auto r = test::run(kEval + " " + dir.path("m.bin") + " --data " + dir.path("val.bin") + " -t " + tok +
                       " --seq 32 --stride 8 --json --threads 1");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"val_loss", "val_bpb", "tokens", "bytes", "seq", "stride"}) EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["tokens"], 499);
    EXPECT_EQ(j["stride"], 8);
    EXPECT_EQ(j["softmax"], "full");
    // The artifact is read in memory, with no temporary file.
    r = test::run(kEval + " " + dir.path("m.int8.zlib") + " --data " + dir.path("val.bin") + " --json --compact --max-tokens 200");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto k = nlohmann::json::parse(r.out);
    EXPECT_EQ(k["softmax"], "compact");
    EXPECT_EQ(k["tokens"], 199);
    EXPECT_TRUE(k["val_bpb"].is_null());
    r = test::run(kEval + " " + dir.path("m.bin") + " --data " + dir.path("val.bin") + " -t " + tok);
    EXPECT_NE(r.out.find("val_bpb:"), std::string::npos) << r.out;

    auto expect_error = [&](const std::string& args, const std::string& fragment) {
        const auto e = test::run(kEval + " " + args);
        EXPECT_EQ(e.exit_code, 1) << args;
        EXPECT_EQ(e.err.rfind("ane-eval: error: ", 0), 0u) << e.err;
        EXPECT_NE(e.err.find(fragment), std::string::npos) << e.err;
    };
    write_token_file(dir.path("big.bin"), std::vector<std::uint16_t>(100, 2000), TokenFormat::Raw);
    expect_error(dir.path("m.bin") + " --data " + dir.path("big.bin"), "outside the model's vocabulary");
    const std::string llama = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    expect_error(dir.path("m.bin") + " --data " + dir.path("val.bin") + " -t " + llama, "32000 tokens");
    write_token_file(dir.path("short.bin"), std::vector<std::uint16_t>(20, 5), TokenFormat::Raw);
    expect_error(dir.path("m.bin") + " --data " + dir.path("short.bin") + " --seq 32", "fewer than one window");
    // The default window shrinks to data shorter than the model's context.
    r = test::run(kEval + " " + dir.path("m.bin") + " --data " + dir.path("short.bin") + " --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["seq"], 19);
    EXPECT_EQ(test::run(kEval + " " + dir.path("m.bin")).exit_code, 2);  // --data missing
    EXPECT_NE(test::run(kEval + " --help").out.find("scored exactly once"), std::string::npos);
}

// stories260K as a Q8_0 and a Q4_0 GGUF: ane-eval keeps the blocks (the report says so) and
// scores close to the float32 file; --weights re-encodes at load; a wrong name is a usage error.
TEST(CliEval, EncodedWeightsScoreCloseToFloat32) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    const std::string text = test::shared_data("corpus-tinystories-valid-head/tinystories_val_head.txt");
    ANE_REQUIRE_SHARED(gguf);
    ANE_REQUIRE_SHARED(text);
    test::TempDir dir;
    const std::string convert = std::string(ANE_CONVERT_BIN);
    auto ok = [](const test::RunResult& r) { ASSERT_EQ(r.exit_code, 0) << r.err; };
    ok(test::run(convert + " tokens " + text + " -t " + gguf + " -o " + dir.path("val.bin")));
    ok(test::run(convert + " export-gguf " + gguf + " -o " + dir.path("q8.gguf") + " --type q8_0"));
    ok(test::run(convert + " export-gguf " + gguf + " -o " + dir.path("q4.gguf") + " --type q4_0"));
    // One GEMM library for every run (the F16 fallback matrices go through it): with auto each
    // process times both per shape, and OpenBLAS and oneDNN differ here by 3e-4 in val_loss, more
    // than the 1e-4 two runs of the same encoder are held to (it failed once in CI under load).
    auto eval = [&](const std::string& model, const std::string& extra) {
        const auto r = test::run(kEval + " " + model + " --data " + dir.path("val.bin") +
                                 " --max-tokens 4000 --seq 256 --json --threads 2 --gemm openblas " + extra);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return nlohmann::json::parse(r.out);
    };
    const auto f32 = eval(gguf, "");
    const auto q8 = eval(dir.path("q8.gguf"), "");
    const auto q4 = eval(dir.path("q4.gguf"), "");
    const auto q8_at_load = eval(gguf, "--weights q8_0");
    const auto f16_at_load = eval(gguf, "--weights f16");
    EXPECT_NE(q8["weights"].get<std::string>().find("Q8_0 x "), std::string::npos) << q8["weights"];
    EXPECT_NE(q4["weights"].get<std::string>().find("Q4_0 x "), std::string::npos) << q4["weights"];
    const double base = f32["val_loss"];
    EXPECT_NEAR(double(q8["val_loss"]), base, 0.01);
    EXPECT_NEAR(double(q8_at_load["val_loss"]), double(q8["val_loss"]), 1e-4);  // the same encoder
    EXPECT_NEAR(double(f16_at_load["val_loss"]), base, 1e-3);
    EXPECT_NEAR(double(q4["val_loss"]), base, 0.1);
    EXPECT_GT(double(q4["val_loss"]), double(q8["val_loss"]));
    const auto bad = test::run(kEval + " " + gguf + " --data " + dir.path("val.bin") + " --weights q5_1");
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("f32, f16, bf16, q8_0, q4_0"), std::string::npos) << bad.err;
}

// ANE_MAX_CPU_ISA makes our kernels choose as a smaller CPU's would (the report names the
// ones chosen), with the same scores within rounding; an unknown name is refused.
TEST(CliEval, KernelsCappedByAneMaxCpuIsaScoreAsTheWidest) {
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    const std::string text = test::shared_data("corpus-tinystories-valid-head/tinystories_val_head.txt");
    ANE_REQUIRE_SHARED(gguf);
    ANE_REQUIRE_SHARED(text);
    test::TempDir dir;
    const auto tokens = test::run(std::string(ANE_CONVERT_BIN) + " tokens " + text + " -t " + gguf + " -o " +
                                  dir.path("val.bin"));
    ASSERT_EQ(tokens.exit_code, 0) << tokens.err;
    // Q8_0 and Q4_0 at load: the products run on our int8 kernels, whose variants differ most
    // (Q4_0 in groups of 8 rows where the CPU has kernels for them, AVX2 included).
    auto val_loss = [&](const std::string& cap, const std::string& type) {
        const auto r = test::run("env " + cap + " " + kEval + " " + gguf + " --data " + dir.path("val.bin") +
                                 " --max-tokens 2000 --seq 256 --json --threads 2 --gemm openblas --weights " + type);
        EXPECT_EQ(r.exit_code, 0) << cap << ": " << r.err;
        return double(nlohmann::json::parse(r.out)["val_loss"]);
    };
    auto report = [&](const std::string& cap) {
        const auto r = test::run("env " + cap + " " + std::string(ANE_GENERATE_BIN) + " " + gguf +
                                 " -p Once -n 4 --temperature 0 --weights q8_0 -v");
        EXPECT_EQ(r.exit_code, 0) << cap << ": " << r.err;
        return r.err;
    };
    for (const char* type : {"q8_0", "q4_0"}) {
        const double widest = val_loss("-u ANE_MAX_CPU_ISA", type);
        for (const char* cap : {"portable", "avx2", "avx2_vnni", "avx512"})
            EXPECT_NEAR(val_loss(std::string("ANE_MAX_CPU_ISA=") + cap, type), widest, 1e-3) << cap << " " << type;
    }
    EXPECT_NE(report("ANE_MAX_CPU_ISA=portable").find("own portable C++ kernel (int8: none)"), std::string::npos);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        EXPECT_NE(report("ANE_MAX_CPU_ISA=avx2").find("own AVX2 kernel (int8: AVX2)"), std::string::npos);
    }
#endif
    const auto bad = test::run("env ANE_MAX_CPU_ISA=avx9 " + kEval + " " + gguf + " --data " + dir.path("val.bin"));
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_EQ(bad.err,
              "ane-eval: ANE_MAX_CPU_ISA=avx9: unknown instruction set (portable, avx2, avx2_vnni or avx512)\n");
}
