// Writes that survive being killed: ane-train with --save-every 1 killed with SIGKILL at
// random moments leaves a checkpoint that always loads and resumes, and no temporary that
// outlives the next run.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "ane/checkpoint.hpp"
#include "ane/config.hpp"
#include "ane/file_io.hpp"
#include "ane/token_file.hpp"
#include "test_util.hpp"

extern char** environ;

using namespace ane;
namespace fs = std::filesystem;

namespace {

// Starts argv with stdout and stderr sent to /dev/null; returns the pid.
pid_t spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0 ? pid : -1;
}

int temporaries_in(const std::string& dir) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().string().ends_with(".ane-tmp")) ++n;
    return n;
}

}  // namespace

TEST(CrashSafety, KilledAtRandomMomentsTheCheckpointAlwaysResumes) {
    test::TempDir dir;
    ModelConfig c = test::tiny_config();
    c.vocab = 64;
    c.seq = 16;
    save_config_json(c, dir.path("m.json"));
    std::vector<std::uint16_t> tokens;
    for (int i = 0; i < 4000; ++i) tokens.push_back(std::uint16_t((i * 7 + i / 13) % 50));
    write_token_file(dir.path("t.bin"), tokens, TokenFormat::Raw);
    const std::string out = dir.path("ck.bin"), best = dir.path("ck.best.bin");
    const std::vector<std::string> common = {"--data", dir.path("t.bin"), "-o", out, "--batch", "2", "--threads", "1",
                                             "--steps", "1000000", "--save-every", "1", "--eval-every", "3", "-q"};
    // A first run until its first save: start-up under sanitizers on a busy machine can take
    // longer than any fixed delay, and the rounds below are about kills after that point.
    {
        std::vector<std::string> args = {ANE_TRAIN_BIN, "--config", dir.path("m.json"), "--force"};
        args.insert(args.end(), common.begin(), common.end());
        const pid_t pid = spawn(args);
        ASSERT_GT(pid, 0);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (!fs::exists(out) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        ASSERT_TRUE(fs::exists(out)) << "no checkpoint after 120 s";
    }
    std::mt19937 rng(7);
    int kills = 0, loads = 0, resumed_steps = 0;
    for (int round = 0; round < 50; ++round) {
        std::vector<std::string> args = {ANE_TRAIN_BIN, "--resume", out};
        args.insert(args.end(), common.begin(), common.end());
        const pid_t pid = spawn(args);
        ASSERT_GT(pid, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 400));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        kills += WIFSIGNALED(status) ? 1 : 0;
        // Whatever moment the kill came, what is on disk is a whole checkpoint.
        ASSERT_TRUE(fs::exists(out)) << "round " << round;
        for (const std::string& path : {out, best}) {
            if (!fs::exists(path)) continue;
            Checkpoint ck;
            ASSERT_NO_THROW(ck = read_blzt(path, {.load_moments = true})) << "round " << round << ": " << path;
            ++loads;
            if (path == out) resumed_steps = ck.state.step;
        }
        // A temporary is at most the one save that was cut short.
        EXPECT_LE(temporaries_in(dir.path("")), 2) << "round " << round;
    }
    EXPECT_GE(kills, 45);  // a few runs may die of their own during start-up timing; most were killed
    EXPECT_GE(loads, 50);
    EXPECT_GT(resumed_steps, 0);
    // The next run that ends normally leaves no temporary behind.
    const auto r = test::run(std::string(ANE_TRAIN_BIN) + " --resume " + out + " --data " + dir.path("t.bin") + " -o " + out +
                             " --batch 2 --threads 1 --stop-after 2 --eval-every 1 -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_blzt(out).state.step, resumed_steps + 2);
    EXPECT_EQ(temporaries_in(dir.path("")), 0);
}

// A full disk (here: a file-size limit, which fails writes the same way) during a save leaves
// what was there intact, says so in one line, and a multi-file output changes as a whole or
// not at all.
TEST(CrashSafety, AFailedWriteLeavesThePreviousFilesIntact) {
    test::TempDir dir;
    ModelConfig c = test::tiny_config();
    c.vocab = 2000;  // model.safetensors of ~64 KB: over the limit below, while config.json is not
    Checkpoint ck;
    ck.weights = test::random_weights(c, 1);
    write_blzt(ck, dir.path("m.bin"));
    ck.weights = test::random_weights(c, 2);
    write_blzt(ck, dir.path("other.bin"));
    const std::string convert = ANE_CONVERT_BIN;
    ASSERT_EQ(test::run(convert + " export-hf " + dir.path("m.bin") + " -o " + dir.path("hf") + " -q").exit_code, 0);
    const auto weights = test::read_bytes(dir.path("hf/model.safetensors"));
    const auto config = test::read_bytes(dir.path("hf/config.json"));
    const auto limited = [&](const std::string& command) {
        return test::run("bash -c 'trap \"\" XFSZ; ulimit -f 16; " + command + "'");
    };
    auto r = limited(convert + " export-hf " + dir.path("other.bin") + " -o " + dir.path("hf") + " --dtype f32 --force");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("ane-convert: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("write failed"), std::string::npos) << r.err;
    EXPECT_EQ(test::read_bytes(dir.path("hf/model.safetensors")), weights);
    EXPECT_EQ(test::read_bytes(dir.path("hf/config.json")), config);
    EXPECT_EQ(temporaries_in(dir.path("hf")), 0);
    // A single-file save: the old checkpoint stays.
    const auto before = test::read_bytes(dir.path("m.bin"));
    r = limited(convert + " hf " + dir.path("hf") + " -o " + dir.path("m.bin") + " --force");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("write failed"), std::string::npos) << r.err;
    EXPECT_EQ(test::read_bytes(dir.path("m.bin")), before);
    EXPECT_EQ(temporaries_in(dir.path("")), 0);
}
