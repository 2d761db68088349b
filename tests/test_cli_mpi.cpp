// ane-train, ane-mezo and ane-eval under `mpirun -np 2`: two ranks of batch b are one run of
// batch 2b; a rank that dies ends the run without a hang and without damage; ranks started
// differently are refused. Skipped where the build has no MPI or mpirun is absent.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>

#include "ane/checkpoint.hpp"
#include "ane/token_file.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

// mpirun with what a container or a root shell needs: ranks may outnumber cores, and Open MPI's
// shared-memory transport copies without the ptrace permission containers often withhold.
std::string mpirun(int ranks) {
    // In ASan builds, no leak report from the ranks: Open MPI's plugins keep memory past
    // MPI_Finalize and are unloaded by then, so LeakSanitizer can neither name nor suppress it
    // (the same code's leaks are checked by every single-process test).
    std::string cmd = "ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" OMPI_MCA_btl_vader_single_copy_mechanism=none "
                      "OMP_WAIT_POLICY=passive mpirun -np " +
                      std::to_string(ranks) + " --oversubscribe --bind-to none";
    if (::geteuid() == 0) cmd += " --allow-run-as-root";
    return cmd + " ";
}

#define REQUIRE_MPI()                                                                                    \
    do {                                                                                                 \
        if (!ANE_TEST_HAVE_MPI) GTEST_SKIP() << "built without MPI (install libopenmpi-dev and rebuild)"; \
        if (test::run("command -v mpirun").exit_code != 0)                                               \
            GTEST_SKIP() << "mpirun not found (install openmpi-bin)";                                    \
    } while (0)

struct MpiRun {
    test::TempDir dir;
    std::string data, val, config;
    MpiRun() {
        data = dir.path("train.bin");
        val = dir.path("val.bin");
        write_token_file(data, test::phrase_tokens(20000, 3), TokenFormat::Raw);
        write_token_file(val, test::phrase_tokens(3000, 4), TokenFormat::Raw);
        config = dir.path("m.json");
        std::ofstream(config) << R"({"dim": 32, "hidden": 64, "heads": 4, "kv_heads": 2, "seq": 16, "layers": 2,)"
                                 R"( "vocab": 32})";
    }
};

double max_difference(const Weights& a, const Weights& b) {
    double worst = 0;
    auto& other = const_cast<Weights&>(b);
    a.for_each([&](const std::string& name, const Tensor& t) {
        const Tensor* u = other.find(name);
        for (std::int64_t i = 0; i < t.numel(); ++i) worst = std::max(worst, double(std::fabs(t[i] - (*u)[i])));
    });
    return worst;
}

TEST(CliMpi, TwoRanksOfBatchBAreOneRankOfBatch2B) {
    REQUIRE_MPI();
    MpiRun r;
    const std::string flags = " --config " + r.config + " --data " + r.data + " --val " + r.val +
                              " --steps 10 --lr 3e-3 --warmup 2 --seed 5 --eval-every 10 --threads 1 -q -f";
    auto one = test::run(std::string(ANE_TRAIN_BIN) + flags + " --batch 4 -o " + r.dir.path("one.bin"));
    ASSERT_EQ(one.exit_code, 0) << one.err;
    auto two = test::run(mpirun(2) + ANE_TRAIN_BIN + flags + " --batch 2 -o " + r.dir.path("two.bin"));
    ASSERT_EQ(two.exit_code, 0) << two.err;
    const Checkpoint a = read_blzt(r.dir.path("one.bin")), b = read_blzt(r.dir.path("two.bin"));
    EXPECT_LT(max_difference(a.weights, b.weights), 2e-5);
    EXPECT_NEAR(test::report_value(one.out, "val_loss"), test::report_value(two.out, "val_loss"), 1e-4);
    EXPECT_EQ(test::report_value(two.out, "total_tokens_M"), test::report_value(one.out, "total_tokens_M"));
    EXPECT_EQ(b.metadata["train"]["ranks"], 2);
    // One report: rank 1 prints nothing.
    EXPECT_EQ(std::count(two.out.begin(), two.out.end(), '\n'), std::count(one.out.begin(), one.out.end(), '\n'));

    // Resumed on a different number of ranks: a warning, and the run goes on.
    auto more = test::run(mpirun(2) + ANE_TRAIN_BIN + " --resume " + r.dir.path("one.bin") + " --data " + r.data +
                          " --val " + r.val + " --steps 12 --threads 1 -f -o " + r.dir.path("more.bin"));
    ASSERT_EQ(more.exit_code, 0) << more.err;
    EXPECT_NE(more.err.find("saved by a run of 1 rank(s), continued on 2"), std::string::npos) << more.err;
}

TEST(CliMpi, MezoAndEvalOnTwoRanksMatchOneRank) {
    REQUIRE_MPI();
    MpiRun r;
    auto base = test::run(std::string(ANE_TRAIN_BIN) + " --config " + r.config + " --data " + r.data +
                          " --steps 20 --batch 4 --lr 3e-3 --eval-every 0 --threads 1 -q -f -o " + r.dir.path("base.bin"));
    ASSERT_EQ(base.exit_code, 0) << base.err;
    const std::string flags = " --init " + r.dir.path("base.bin") + " --data " + r.data + " --val " + r.val +
                              " --steps 20 --lr 1e-3 --eval-every 20 --threads 1 -q -f";
    auto one = test::run(std::string(ANE_MEZO_BIN) + flags + " --batch 4 -o " + r.dir.path("one.bin"));
    ASSERT_EQ(one.exit_code, 0) << one.err;
    auto two = test::run(mpirun(2) + ANE_MEZO_BIN + flags + " --batch 2 -o " + r.dir.path("two.bin"));
    ASSERT_EQ(two.exit_code, 0) << two.err;
    EXPECT_LT(max_difference(read_blzt(r.dir.path("one.bin")).weights, read_blzt(r.dir.path("two.bin")).weights), 1e-6);
    EXPECT_NEAR(test::report_value(one.out, "val_loss"), test::report_value(two.out, "val_loss"), 1e-6);

    // Evaluation: the windows shared out, the sums added: the same printed numbers.
    const std::string eval = std::string(ANE_EVAL_BIN) + " " + r.dir.path("base.bin") + " --data " + r.val +
                             " --seq 16 --stride 8 --threads 1 -q";
    auto e1 = test::run(eval);
    auto e2 = test::run(mpirun(2) + eval);
    ASSERT_EQ(e1.exit_code, 0) << e1.err;
    ASSERT_EQ(e2.exit_code, 0) << e2.err;
    EXPECT_EQ(e1.out, e2.out);
    EXPECT_NE(e1.out.find("val_loss: "), std::string::npos);
}

TEST(CliMpi, RanksStartedDifferentlyAreRefused) {
    REQUIRE_MPI();
    MpiRun r;
    const std::string common = " --config " + r.config + " --data " + r.data + " --steps 3 --eval-every 0 --threads 1 -q -f -o ";
    auto res = test::run(mpirun(1) + ANE_TRAIN_BIN + common + r.dir.path("a.bin") + " --seed 1 : -np 1 " + ANE_TRAIN_BIN +
                         common + r.dir.path("a.bin") + " --seed 2");
    EXPECT_NE(res.exit_code, 0);
    EXPECT_NE(res.err.find("rank(s) 1 of 2 differ from rank 0 in the model, the data or the flags"), std::string::npos)
        << res.err;
    EXPECT_FALSE(std::filesystem::exists(r.dir.path("a.bin")));
}

// One rank killed mid-run: the other does not wait forever, and the checkpoint saved before
// is intact.
TEST(CliMpi, ARankThatDiesEndsTheRunAndLeavesTheCheckpoint) {
    REQUIRE_MPI();
    MpiRun r;
    const std::string out = r.dir.path("run.bin");
    const std::string train = mpirun(2) + ANE_TRAIN_BIN + " --config " + r.config + " --data " + r.data +
                              " --steps 1000000 --save-every 5 --eval-every 0 --threads 1 -q -f -o " + out;
    const std::string script = train + " & M=$!; for i in $(seq 600); do [ -f " + out +
                               " ] && break; sleep 0.1; done; sleep 0.5; "
                               "kill -9 $(pgrep -P $M | head -n 1); start=$(date +%s); wait $M; code=$?; "
                               "echo \"exit $code after $(( $(date +%s) - start )) s\"";
    const auto t0 = std::chrono::steady_clock::now();
    auto res = test::run("bash -c '" + script + "'");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(seconds, 120);
    ASSERT_NE(res.out.find("exit "), std::string::npos) << res.out << res.err;
    EXPECT_EQ(res.out.find("exit 0 "), std::string::npos) << res.out;
    const Checkpoint ck = read_blzt(out);  // whole: the save is a rename
    EXPECT_GE(ck.state.step, 5);
    EXPECT_EQ(ck.state.step % 5, 0);
}

}  // namespace
}  // namespace ane
