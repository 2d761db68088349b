// End-to-end tests of the ane-train executable.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ane/checkpoint.hpp"
#include "ane/config.hpp"
#include "ane/token_file.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

const std::string kBin = ANE_TRAIN_BIN;

struct TrainSetup {
    test::TempDir dir;
    std::string data, config;
    TrainSetup() {
        std::vector<std::uint16_t> tokens;
        for (int i = 0; i < 6000; ++i) tokens.push_back(std::uint16_t((i * 7 + i / 13) % 50));
        data = dir.path("train.bin");
        write_token_file(data, tokens, TokenFormat::Raw);
        ModelConfig c = test::tiny_config();
        c.vocab = 64;
        c.seq = 16;
        config = dir.path("m.json");
        save_config_json(c, config);
    }
    std::string base(const std::string& out) const {
        return kBin + " --config " + config + " --data " + data + " -o " + dir.path(out) + " --batch 2 --threads 1";
    }
};

}  // namespace

TEST(CliTrain, TrainsAndReports) {
    TrainSetup s;
    const auto r = test::run(s.base("a.bin") + " --steps 5 --eval-every 5 --log-json " + s.dir.path("log.jsonl"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("--- efficiency"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("num_steps: 5"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("val_loss:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("kernels"), std::string::npos) << r.out;
    std::ifstream log(s.dir.path("log.jsonl"));
    int lines = 0;
    for (std::string line; std::getline(log, line);) ++lines;
    EXPECT_EQ(lines, 5);
    EXPECT_EQ(read_blzt(s.dir.path("a.bin")).state.step, 5);
    // Nothing is overwritten without --force.
    const auto again = test::run(s.base("a.bin") + " --steps 1");
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
}

TEST(CliTrain, UsageAndErrors) {
    TrainSetup s;
    EXPECT_EQ(test::run(kBin + " --help").exit_code, 0);
    EXPECT_EQ(test::run(kBin + " --version").exit_code, 0);
    EXPECT_EQ(test::run(kBin + " --data " + s.data + " -o " + s.dir.path("x.bin")).exit_code, 2);  // no model
    EXPECT_EQ(test::run(kBin + " --preset golf --config " + s.config + " --data " + s.data + " -o x").exit_code, 2);
    const auto r = test::run(kBin + " --preset nope --data " + s.data + " -o " + s.dir.path("x.bin"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.err.rfind("ane-train: error: unknown preset", 0), 0u) << r.err;
    EXPECT_FALSE(std::filesystem::exists(s.dir.path("x.bin")));
}

TEST(CliTrain, InterruptSavesAResumableCheckpoint) {
    TrainSetup s;
    const auto r = test::run("timeout --preserve-status -s INT 1.5 " + s.base("int.bin") + " --steps 1000000 --eval-every 0");
    EXPECT_EQ(r.exit_code, 130) << r.err;
    EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
    const Checkpoint ck = read_blzt(s.dir.path("int.bin"));
    EXPECT_GT(ck.state.step, 0);
    const auto more = test::run(kBin + " --resume " + s.dir.path("int.bin") + " --data " + s.data + " -o " +
                                s.dir.path("int.bin") + " --stop-after 2 --threads 1");
    EXPECT_EQ(more.exit_code, 0) << more.err;
    EXPECT_EQ(read_blzt(s.dir.path("int.bin")).state.step, ck.state.step + 2);
}

TEST(CliTrain, FineTunesALlama2cModel) {
    const std::string stories = test::shared_data("stories260K-llama2c/stories260K.bin");
    ANE_REQUIRE_SHARED(stories);
    TrainSetup s;
    const auto r = test::run(kBin + " --init " + stories + " --seq 32 --data " + s.data + " -o " + s.dir.path("ft.bin") +
                             " --steps 3 --batch 2 --threads 1 --lr 1e-4 --warmup 1");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Checkpoint ck = read_blzt(s.dir.path("ft.bin"));
    EXPECT_EQ(ck.weights.config.dim, 64);
    EXPECT_EQ(ck.weights.config.seq, 512);  // fine-tuning at a window of 32 keeps the model's context
    EXPECT_EQ(ck.metadata["train"]["settings"]["seq"], 32);
    EXPECT_EQ(ck.weights.config.residual_scale, 1.0);
    EXPECT_EQ(ck.state.adam_t, 3);
}

namespace {

double final_loss(const std::string& out) {
    const auto at = out.find("final_loss: ");
    return at == std::string::npos ? NAN : std::stod(out.substr(at + 12));
}

}  // namespace

TEST(CliTrain, Bf16ProductsTrainLikeFp32) {
    TrainSetup s;
    const std::string flags = " --steps 80 --eval-every 0 --lr 1e-2 --seed 3 -q";
    const auto fp32 = test::run(s.base("f.bin") + flags);
    const auto bf16 = test::run(s.base("b.bin") + flags + " --precision bf16");
    if (bf16.exit_code == 2 && bf16.err.find("--precision bf16: ") != std::string::npos)
        GTEST_SKIP() << "no bf16 products here: " << bf16.err;
    ASSERT_EQ(fp32.exit_code, 0) << fp32.err;
    ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
    const double f = final_loss(fp32.out), b = final_loss(bf16.out);
    EXPECT_LT(b, std::log(50.0) - 0.5) << bf16.out;  // it learns (50 ids occur in the data)
    EXPECT_NEAR(b, f, 0.05) << "fp32 " << f << ", bf16 " << b;
    EXPECT_FALSE(read_blzt(s.dir.path("b.bin")).weights.bit_equal(read_blzt(s.dir.path("f.bin")).weights));
    const auto report = test::run(s.base("v.bin") + " --steps 2 --eval-every 0 -v --precision bf16");
    EXPECT_NE(report.out.find("matrix products: bf16 operands, fp32 accumulation"), std::string::npos) << report.out;
}

TEST(CliTrain, Bf16IsRefusedWhereItCannotRun) {
    TrainSetup s;
    // oneDNN limited to AVX-512 without BF16 stands for a CPU without the instructions.
    auto r = test::run("ONEDNN_MAX_CPU_ISA=AVX512_CORE " + s.base("x.bin") + " --steps 2 --precision bf16");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--precision bf16: "), std::string::npos) << r.err;
    r = test::run(s.base("x.bin") + " --steps 2 --precision bf16 --gemm openblas");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--precision bf16"), std::string::npos) << r.err;
    r = test::run(s.base("x.bin") + " --steps 2 --precision bf16 --device ane-sim");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_FALSE(std::filesystem::exists(s.dir.path("x.bin")));
}
