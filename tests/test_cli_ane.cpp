// --device ane through the stand-in framework (tests/ane_standin): the runtime's calls as Apple's
// framework would see them, results equal to ane-sim bit for bit, injected faults, and the
// one-line refusal where no framework exists.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "test_util.hpp"

namespace ane {
namespace {

#ifdef ANE_STANDIN_PATH
#define ANE_REQUIRE_STANDIN() (void)0
#else
#define ANE_REQUIRE_STANDIN() \
    GTEST_SKIP() << "the stand-in framework is not built (needs gobjc++ and libgnustep-base-dev)"
#define ANE_STANDIN_PATH ""
#endif

// The environment that points `ane` at the stand-in, its call log, and a fault to inject. The
// kernels' directories (<tmp>/<program hash>) go beside the log: tests running in parallel
// compile the same programs, and each process removes its directories when it exits.
std::string standin(const std::string& log, const std::string& fault = "") {
    return std::string("ANE_FRAMEWORK=") + ANE_STANDIN_PATH + " ANE_STANDIN_LOG=" + log +
           " TEMP=" + std::filesystem::path(log).parent_path().string() +
           (fault.empty() ? "" : " ANE_STANDIN_FAULT=" + fault) + " ";
}

std::vector<std::string> log_lines(const std::string& path) {
    const auto bytes = test::read_bytes(path);
    std::istringstream in(std::string(bytes.begin(), bytes.end()));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::vector<std::string> words(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    return w;
}

// Checkpoints equal but for the header's three timing doubles (bytes 48..72, spec/checkpoint.md §1).
void expect_same_checkpoint(const std::string& a, const std::string& b) {
    auto x = test::read_bytes(a), y = test::read_bytes(b);
    ASSERT_EQ(x.size(), y.size()) << a << " vs " << b;
    ASSERT_GT(x.size(), 72u);
    std::fill(x.begin() + 48, x.begin() + 72, 0);
    std::fill(y.begin() + 48, y.begin() + 72, 0);
    EXPECT_TRUE(x == y) << a << " and " << b << " differ";
}

constexpr const char* kConfig =
    R"({"dim": 64, "hidden": 160, "heads": 2, "kv_heads": 1, "head_dim": 32, "seq": 32, "layers": 2, "vocab": 512})";

struct TrainingRun {
    test::TokenCorpus corpus;
    std::string config;
    TrainingRun() : corpus(test::shared_data("tinyshakespeare/input.txt"), 60000) {
        config = corpus.dir.path("model.json");
        const std::string json = kConfig;
        test::write_bytes(config, std::vector<std::uint8_t>(json.begin(), json.end()));
    }
    test::RunResult train(const std::string& device, const std::string& out, const std::string& env = "",
                          const std::string& extra = "--steps 50") const {
        return test::run(env + ANE_TRAIN_BIN + " --config " + config + " --data " + corpus.train + " -o " + out +
                         " --batch 2 --lr 2e-3 --eval-every 0 --threads 2 --seed 4 -f -v --gemm openblas --device " +
                         device + " " + extra);
    }
};

TEST(CliAne, TrainingEqualsAneSimBitForBitWithTheFrameworksCallSequence) {
    ANE_REQUIRE_STANDIN();
    ANE_REQUIRE_SHARED(test::shared_data("tinyshakespeare/input.txt"));
    TrainingRun run;
    ASSERT_TRUE(run.corpus.ready);
    const std::string log = run.corpus.dir.path("calls.log");
    const auto sim = run.train("ane-sim", run.corpus.dir.path("sim.bin"));
    const auto ane = run.train("ane", run.corpus.dir.path("ane.bin"), standin(log));
    ASSERT_EQ(sim.exit_code, 0) << sim.err;
    ASSERT_EQ(ane.exit_code, 0) << ane.err;
    expect_same_checkpoint(run.corpus.dir.path("sim.bin"), run.corpus.dir.path("ane.bin"));
    EXPECT_EQ(test::report_value(ane.out, "final_loss"), test::report_value(sim.out, "final_loss"));
    // Ten kernels, eight programs: woFwd, wotBwd and qBwd are one 64 -> 64 matmul here.
    EXPECT_NE(ane.out.find("ane: 8 kernel compiles (10 kernels now)"), std::string::npos) << ane.out;

    // Replay the log: who is locked, loaded, and which requests each program serves.
    std::set<std::string> hexes, locked, loaded, compiled, unloaded, freed;
    std::map<std::string, int> requests_per_output;  // output surface = one program
    int evaluations = 0, violations = 0;
    std::string live;
    for (const auto& line : log_lines(log)) {
        const auto w = words(line);
        if (w.empty()) continue;
        if (w[0] == "violation") ++violations;
        if (w[0] == "compile") {
            EXPECT_EQ(w.at(3), "ok") << line;
            EXPECT_TRUE(hexes.insert(w.at(2)).second) << "compiled twice: " << line;
            compiled.insert(w.at(1));
        }
        if (w[0] == "load" && w.at(2) == "ok") loaded.insert(w.at(1));
        if (w[0] == "unload") {
            EXPECT_EQ(loaded.erase(w.at(1)), 1u) << line;
            unloaded.insert(w.at(1));
        }
        if (w[0] == "request") ++requests_per_output[w.at(5)];
        if (w[0] == "lock") {
            EXPECT_TRUE(locked.insert(w.at(1)).second) << line;
        } else if (w[0] == "unlock") {
            EXPECT_EQ(locked.erase(w.at(1)), 1u) << line;
        }
        if (w[0] == "eval") {
            ++evaluations;
            EXPECT_TRUE(locked.empty()) << "evaluation while the host holds " << *locked.begin();
            EXPECT_TRUE(loaded.count(w.at(1))) << line;
        }
        if (w[0] == "free") freed.insert(w.at(1));
        if (w[0] == "live") live = line;
    }
    EXPECT_EQ(violations, 0);
    EXPECT_EQ(compiled.size(), 8u);  // each kernel shape once (full mode, spec/ane.md §6)
    EXPECT_EQ(unloaded, compiled) << "every model unloaded";
    for (const auto& m : compiled) EXPECT_TRUE(freed.count(m)) << m << " never freed";
    EXPECT_TRUE(locked.empty());
    // One request per layer and kernel with staged weights (six for the program woFwd, wotBwd
    // and qBwd share), one for each weight-free attention-backward kernel.
    std::multiset<int> per_program;
    for (const auto& [out, n] : requests_per_output) per_program.insert(n);
    EXPECT_EQ(per_program, (std::multiset<int>{1, 1, 2, 2, 2, 2, 2, 6}));
    // 50 steps × 2 windows × 2 layers × (3 forward + 7 backward evaluations).
    EXPECT_EQ(evaluations, 50 * 2 * 2 * 10);
    EXPECT_EQ(live, "live descriptors=0 models=0 loaded=0 requests=0 objects=0 surfaces=0");
}

TEST(CliAne, InjectedFaultsGiveTheirDocumentedBehaviourAndDamageNoCheckpoint) {
    ANE_REQUIRE_STANDIN();
    ANE_REQUIRE_SHARED(test::shared_data("tinyshakespeare/input.txt"));
    TrainingRun run;
    ASSERT_TRUE(run.corpus.ready);
    const std::string reference = run.corpus.dir.path("reference.bin"), out = run.corpus.dir.path("out.bin");
    ASSERT_EQ(run.train("ane-sim", reference).exit_code, 0);

    // A compile failure: an error naming the kernel before any step; the file at -o untouched.
    std::filesystem::copy_file(reference, out);
    const auto before = test::read_bytes(out);
    const std::string log1 = run.corpus.dir.path("compile.log");
    auto r = run.train("ane", out, standin(log1, "compile@3"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("ane-train: error: ane: kernel "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("failed to compile (compile 3 of this process): "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("injected compile failure"), std::string::npos) << r.err;
    EXPECT_TRUE(test::read_bytes(out) == before);
    EXPECT_EQ(log_lines(log1).back(), "live descriptors=0 models=0 loaded=0 requests=0 objects=0 surfaces=0");

    // A load that fails once: retried after 100 ms, the run as without the fault.
    r = run.train("ane", out, standin(run.corpus.dir.path("load.log"), "load@2"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("did not load (") , std::string::npos) << r.err;
    EXPECT_NE(r.err.find("retrying once"), std::string::npos) << r.err;
    expect_same_checkpoint(reference, out);

    // An evaluation error in step 13 of 20 (40 evaluations a step): the run stops with an
    // error naming the kernel; the checkpoint saved at step 10 stays as it was written.
    std::filesystem::remove(out);
    const std::string log3 = run.corpus.dir.path("eval.log");
    r = run.train("ane", out, standin(log3, "eval@500"), "--steps 20 --save-every 10");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(": evaluation failed: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("injected evaluation failure"), std::string::npos) << r.err;
    const auto info = test::run(std::string(ANE_CONVERT_BIN) + " info " + out);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find("run: step 10 of 20"), std::string::npos) << info.out;
    EXPECT_EQ(log_lines(log3).back(), "live descriptors=0 models=0 loaded=0 requests=0 objects=0 surfaces=0");
}

TEST(CliAne, CompilesBeyondTheLimitAreRefusedByName) {
    ANE_REQUIRE_STANDIN();
    ANE_REQUIRE_SHARED(test::shared_data("tinyshakespeare/input.txt"));
    TrainingRun run;
    ASSERT_TRUE(run.corpus.ready);
    const auto r = run.train("ane", run.corpus.dir.path("m.bin"),
                             "ANE_COMPILE_LIMIT=4 " + standin(run.corpus.dir.path("calls.log")));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("would be compile 5 of this process"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(run.corpus.dir.path("m.bin")));
}

TEST(CliAne, MezoEvaluationAndGenerationEqualAneSim) {
    ANE_REQUIRE_STANDIN();
    const std::string model = test::shared_data("stories260K-llama2c/stories260K.bin");
    const std::string tok = test::shared_data("stories260K-llama2c/tok512.bin");
    const std::string text = test::shared_data("corpus-tinystories-excerpt/tinystories_train_head.txt");
    ANE_REQUIRE_SHARED(model);
    ANE_REQUIRE_SHARED(text);
    test::TokenCorpus corpus(text, 20000);
    ASSERT_TRUE(corpus.ready);
    const std::string env = standin(corpus.dir.path("calls.log"));
    // MeZO LoRA-split: the base baked into conv kernels (one program per layer and kernel). The
    // products left on the CPU take one library: --gemm auto times both per shape, and on a
    // loaded machine two runs can choose differently (a run in ten differed under load).
    auto mezo = [&](const std::string& device, const std::string& e) {
        const std::string out = corpus.dir.path(device + ".bin");
        const auto r = test::run(e + ANE_MEZO_BIN + " --init " + model + " --data " + corpus.train + " -o " + out +
                                 " --lora split --steps 10 --eval-every 0 --seq 64 --batch 2 --threads 2 -f -v "
                                 "--seed 2 --lr 4e-4 --gemm openblas --device " + device);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return out;
    };
    expect_same_checkpoint(mezo("ane-sim", ""), mezo("ane", env));
    auto eval = [&](const std::string& device, const std::string& e) {
        const auto r = test::run(e + ANE_EVAL_BIN + " " + model + " --data " + corpus.train + " -t " + tok +
                                 " --threads 2 -q --gemm openblas --device " + device);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    };
    EXPECT_EQ(eval("ane", env), eval("ane-sim", ""));
    auto generate = [&](const std::string& device, const std::string& e) {
        const auto r = test::run(e + ANE_GENERATE_BIN + " " + model + " -t " + tok +
                                 " --prompt 'Once upon a time' -n 24 --temperature 0 --threads 2 -q --gemm openblas --device " +
                                 device);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    };
    EXPECT_EQ(generate("ane", env), generate("ane-sim", ""));
    EXPECT_EQ(log_lines(corpus.dir.path("calls.log")).back(),
              "live descriptors=0 models=0 loaded=0 requests=0 objects=0 surfaces=0");
}

TEST(CliAne, WithoutTheFrameworkEveryToolRefusesInOneLine) {
#ifdef __APPLE__
    GTEST_SKIP() << "macOS has the framework";
#endif
    const std::string model = test::shared_data("stories260K-llama2c/stories260K.bin");
    ANE_REQUIRE_SHARED(model);
    test::TempDir dir;
    const std::string data = dir.path("d.bin");
    const std::string line =
        ": error: ane: AppleNeuralEngine framework not found (macOS on Apple Silicon only); use --device cpu or ane-sim\n";
    const std::vector<std::pair<std::string, std::string>> tools = {
        {"ane-train", std::string(ANE_TRAIN_BIN) + " --init " + model + " --data " + data + " -o " + dir.path("a.bin")},
        {"ane-mezo", std::string(ANE_MEZO_BIN) + " --init " + model + " --data " + data + " -o " + dir.path("b.bin")},
        {"ane-eval", std::string(ANE_EVAL_BIN) + " " + model + " --data " + data},
        {"ane-generate", std::string(ANE_GENERATE_BIN) + " " + model + " --prompt x -n 1"},
    };
    for (const auto& [tool, command] : tools) {
        const auto r = test::run("env -u ANE_FRAMEWORK " + command + " --device ane");
        EXPECT_EQ(r.exit_code, 1) << tool;
        EXPECT_EQ(r.err, tool + line);
        EXPECT_FALSE(std::filesystem::exists(dir.path("a.bin")));
    }
    // A framework path that does not load names itself.
    const auto r = test::run("ANE_FRAMEWORK=" + dir.path("missing.so") + " " + tools[3].second + " --device ane");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("cannot use the framework ANE_FRAMEWORK names (" + dir.path("missing.so") + ")"),
              std::string::npos)
        << r.err;
}

// On a Mac with a Neural Engine (ANE_HARDWARE_TESTS=1): the hardware's fp16 arithmetic is not
// the interpreter's bit for bit, so training tracks ane-sim within a tolerance.
TEST(CliAne, TheNeuralEngineTracksAneSim) {
#ifndef __APPLE__
    GTEST_SKIP() << "the Neural Engine exists on Apple Silicon Macs only";
#endif
    if (!std::getenv("ANE_HARDWARE_TESTS")) GTEST_SKIP() << "set ANE_HARDWARE_TESTS=1 on an Apple Silicon Mac";
    ANE_REQUIRE_SHARED(test::shared_data("tinyshakespeare/input.txt"));
    TrainingRun run;
    ASSERT_TRUE(run.corpus.ready);
    const auto sim = run.train("ane-sim", run.corpus.dir.path("sim.bin"));
    const auto ane = run.train("ane", run.corpus.dir.path("ane.bin"));
    ASSERT_EQ(sim.exit_code, 0) << sim.err;
    ASSERT_EQ(ane.exit_code, 0) << ane.err;
    EXPECT_NEAR(test::report_value(ane.out, "final_loss"), test::report_value(sim.out, "final_loss"), 0.05);
    EXPECT_NE(ane.out.find("ane: 8 kernel compiles"), std::string::npos) << ane.out;
}

}  // namespace
}  // namespace ane
