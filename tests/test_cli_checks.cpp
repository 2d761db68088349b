// The command line a user meets: every tool checks its files and values before it starts,
// never loses work, reads pipes, and says what is wrong in one line with the right exit code.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/config.hpp"
#include "ane/token_file.hpp"
#include "test_util.hpp"

using namespace ane;
namespace fs = std::filesystem;

namespace {

const std::string kConvert = ANE_CONVERT_BIN, kTrain = ANE_TRAIN_BIN, kEval = ANE_EVAL_BIN,
                  kGenerate = ANE_GENERATE_BIN, kMezo = ANE_MEZO_BIN;

// A tiny model (vocab 64, context 16) and tokens it can train on.
struct Workspace {
    test::TempDir dir;
    std::string model, data, config;
    Workspace(int seq = 16) {
        ModelConfig c = test::tiny_config();
        c.vocab = 64;
        c.seq = seq;
        config = dir.path("m.json");
        save_config_json(c, config);
        Checkpoint ck;
        ck.weights = test::random_weights(c, 3);
        model = dir.path("model.bin");
        write_blzt(ck, model);
        std::vector<std::uint16_t> tokens;
        for (int i = 0; i < 4000; ++i) tokens.push_back(std::uint16_t((i * 7 + i / 13) % 50));
        data = dir.path("data.bin");
        write_token_file(data, tokens, TokenFormat::Raw);
    }
    std::string p(const std::string& name) const { return dir.path(name); }
    std::string train(const std::string& out, const std::string& more = "") const {
        return kTrain + " --config " + config + " --data " + data + " -o " + out + " --batch 2 --threads 1 " + more;
    }
};

// One line on stderr naming the tool, and the expected exit code.
void expect_one_line(const test::RunResult& r, int code, const std::string& tool, const std::string& fragment) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_EQ(r.err.rfind(tool + ": ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << r.err;
}

}  // namespace

TEST(CliChecks, TrainingRefusesAnUnwritableOutputBeforeTraining) {
    Workspace w;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = test::run(w.train("/nonexistent/dir/m.bin", "--steps 300 --eval-every 0"));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    expect_one_line(r, 1, "ane-train", "the directory /nonexistent/dir does not exist");
    EXPECT_TRUE(r.out.empty()) << "trained before failing: " << r.out;
    EXPECT_LT(seconds, 30.0);

    fs::create_directory(w.p("adir"));
    r = test::run(w.train(w.p("adir"), "--steps 3 --force"));
    expect_one_line(r, 1, "ane-train", "is a directory");
    EXPECT_FALSE(fs::exists(w.p("adir.best")));
    r = test::run(kMezo + " --init " + w.model + " --data " + w.data + " -o " + w.p("adir") + " --steps 2 -f");
    expect_one_line(r, 1, "ane-mezo", "is a directory");

    if (::geteuid() != 0) {  // root writes into read-only directories
        fs::create_directory(w.p("ro"));
        fs::permissions(w.p("ro"), fs::perms::owner_read | fs::perms::owner_exec);
        r = test::run(w.train(w.p("ro/m.bin"), "--steps 3"));
        expect_one_line(r, 1, "ane-train", "cannot create a file in");
        fs::permissions(w.p("ro"), fs::perms::owner_all);
    }
}

TEST(CliChecks, NothingIsOverwrittenWithoutForce) {
    Workspace w;
    const std::vector<std::uint8_t> mine = {'m', 'i', 'n', 'e'};
    // The best checkpoint and the log are outputs too.
    test::write_bytes(w.p("a.best.bin"), mine);
    auto r = test::run(w.train(w.p("a.bin"), "--steps 2 --eval-every 1"));
    expect_one_line(r, 1, "ane-train", "a.best.bin: already exists (use --force to overwrite)");
    EXPECT_EQ(test::read_bytes(w.p("a.best.bin")), mine);
    EXPECT_FALSE(fs::exists(w.p("a.bin")));
    test::write_bytes(w.p("log.jsonl"), mine);
    r = test::run(w.train(w.p("b.bin"), "--steps 2 --log-json " + w.p("log.jsonl")));
    expect_one_line(r, 1, "ane-train", "log.jsonl: already exists");
    EXPECT_EQ(test::read_bytes(w.p("log.jsonl")), mine);
    // A user's NAME.tmp is not ours: a save leaves it alone.
    test::write_bytes(w.p("c.bin.tmp"), mine);
    r = test::run(w.train(w.p("c.bin"), "--steps 2 -q"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(test::read_bytes(w.p("c.bin.tmp")), mine);
    EXPECT_FALSE(fs::exists(temporary_path(w.p("c.bin"))));
    // Resuming in place owns its companions: the best checkpoint is replaced, the log appended.
    r = test::run(w.train(w.p("d.bin"), "--steps 2 --eval-every 1 -q --log-json " + w.p("d.jsonl")));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = test::run(kTrain + " --resume " + w.p("d.bin") + " --data " + w.data + " -o " + w.p("d.bin") +
                  " --steps 4 --threads 1 -q --log-json " + w.p("d.jsonl"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto log = test::read_bytes(w.p("d.jsonl"));
    EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 4);
    // An output may not be an input.
    r = test::run(w.train(w.data, "--steps 2 --force"));
    expect_one_line(r, 2, "ane-train", "-o/--output " + w.data + " is also --data");
}

TEST(CliChecks, TokensRefusesOneFileForBothSplits) {
    const std::string tok = test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model");
    ANE_REQUIRE_SHARED(tok);
    test::TempDir dir;
    test::write_bytes(dir.path("a.txt"), std::vector<std::uint8_t>(3000, 'a'));
    const auto r = test::run(kConvert + " tokens -t " + tok + " -o " + dir.path("t.bin") + " --val-fraction 0.1 --val-output " +
                             dir.path("t.bin") + " " + dir.path("a.txt"));
    expect_one_line(r, 2, "ane-convert", "is also -o/--output");
    EXPECT_FALSE(fs::exists(dir.path("t.bin")));
}

TEST(CliChecks, TextAndTokenInputsComeFromPipes) {
    const std::string tok = test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model");
    const std::string text = test::shared_data("corpus-tinystories-excerpt/tinystories_train_head.txt");
    ANE_REQUIRE_SHARED(tok);
    ANE_REQUIRE_SHARED(text);
    test::TempDir dir;
    const std::string base = kConvert + " tokens -q -t " + tok + " -o ";
    ASSERT_EQ(test::run(base + dir.path("file.bin") + " " + text).exit_code, 0);
    auto r = test::run("cat " + text + " | " + base + dir.path("pipe.bin") + " /dev/stdin");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = test::run("cat " + text + " | " + base + dir.path("dash.bin") + " -");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = test::run("bash -c '" + base + dir.path("subst.bin") + " <(cat " + text + ")'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto expected = test::read_bytes(dir.path("file.bin"));
    EXPECT_GT(expected.size(), 1000u);
    for (const char* name : {"pipe.bin", "dash.bin", "subst.bin"}) EXPECT_EQ(test::read_bytes(dir.path(name)), expected) << name;

    // Token files from a pipe: the same evaluation as from the file.
    ModelConfig c = test::tiny_config();
    c.vocab = 1024;
    c.seq = 32;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 5);
    write_blzt(ck, dir.path("m.bin"));
    // One library forced: under --gemm auto two processes may choose differently on a close shape.
    const std::string eval =
        kEval + " " + dir.path("m.bin") + " --threads 1 --gemm openblas --max-tokens 2000 -q --data ";
    const auto from_file = test::run(eval + dir.path("file.bin"));
    ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
    const auto from_pipe = test::run("cat " + dir.path("file.bin") + " | " + eval + "-");
    ASSERT_EQ(from_pipe.exit_code, 0) << from_pipe.err;
    EXPECT_EQ(from_pipe.out, from_file.out);
    const auto dev_stdin = test::run("cat " + dir.path("file.bin") + " | " + eval + "/dev/stdin");
    ASSERT_EQ(dev_stdin.exit_code, 0) << dev_stdin.err;
    EXPECT_EQ(dev_stdin.out, from_file.out);
    const auto twice = test::run("cat " + dir.path("file.bin") + " | " + kEval + " " + dir.path("m.bin") + " --data - -t -");
    expect_one_line(twice, 2, "ane-eval", "both read standard input");
}

// Every numeric flag has a range; a value outside it is a usage error (exit 2) whose message
// names the flag and the range. The ranges are listed in the README.
TEST(CliChecks, ValuesOutOfRangeAreUsageErrors) {
    Workspace w;
    const std::string train = kTrain + " --config " + w.config + " --data " + w.data + " -o " + w.p("x.bin") + " ";
    const std::string mezo = kMezo + " --init " + w.model + " --data " + w.data + " -o " + w.p("x.bin") + " ";
    const std::string eval = kEval + " " + w.model + " --data " + w.data + " ";
    const std::string gen = kGenerate + " " + w.model + " ";
    const std::string convert = kConvert + " pack " + w.model + " -o " + w.p("x.int8.zlib") + " ";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {train + "--lr nan", "--lr"},           {train + "--lr -1e-2", "--lr"},
        {train + "--lr inf", "--lr"},           {train + "--steps 0", "--steps"},
        {train + "--steps -3", "--steps"},      {train + "--time 0", "--time"},
        {train + "--batch 0", "--batch"},       {train + "--accum 0", "--accum"},
        {train + "--seq 0", "--seq"},           {train + "--residual-scale 0", "--residual-scale"},
        {train + "--lora-rank 0", "--lora-rank"}, {train + "--beta1 1", "--beta1"},
        {train + "--beta2 -0.1", "--beta2"},    {train + "--adam-eps 0", "--adam-eps"},
        {train + "--min-lr-frac 2", "--min-lr-frac"}, {train + "--wd -1", "--wd"},
        {train + "--clip nan", "--clip"},       {train + "--scale 0", "--scale"},
        {train + "--warmup -1", "--warmup"},    {train + "--eval-windows 0", "--eval-windows"},
        {train + "--threads -1", "--threads"},  {train + "--save-every -2", "--save-every"},
        {train + "--stop-after 0", "--stop-after"}, {train + "--context 0", "--context"},
        {train + "--lora-rank 4 --lora-targets wz", "--lora-targets"}, {train + "--device gpu", "--device"},
        {train + "--device tpu", "--device"},   {train + "--device ane-sim --ane-mode fast", "--ane-mode"},
        {train + "--scale-growth -1", "--scale-growth"}, {mezo + "--ane-mode gpu", "--ane-mode"},
        {eval + "--ane-mode 1", "--ane-mode"},
        {mezo + "--lora-rank 0 --lora split", "--lora-rank"}, {mezo + "--epsilon 0", "--epsilon"},
        {mezo + "--zo-samples -1", "--zo-samples"}, {mezo + "--lr nan", "--lr"},
        {mezo + "--steps 0", "--steps"},        {mezo + "--lora-rank 4", "--lora split or --lora merge"},
        {eval + "--stride 0", "--stride"},      {eval + "--seq 0", "--seq"},
        {eval + "--seq 8 --stride 16", "--stride"}, {eval + "--stride 64", "--stride"},
        {eval + "--batch 0", "--batch"},        {eval + "--max-tokens -1", "--max-tokens"},
        {gen + "--top-p 2", "--top-p"},         {gen + "--top-p 0", "--top-p"},
        {gen + "-n -5", "--n-predict"},         {gen + "--temperature -1", "--temperature"},
        {gen + "--temperature nan", "--temperature"}, {gen + "--top-k -1", "--top-k"},
        {gen + "--repeat-penalty 0", "--repeat-penalty"}, {gen + "--ctx 0", "--ctx"},
        {gen + "--parallel 0", "--parallel"},   {gen + "--weights q5_1", "--weights"},
        {gen + "--kv-cache q8_0", "--kv-cache"},
        {eval + "--weights int4", "--weights"}, {gen + "--device ane-sim --weights q8_0", "--weights"},
        {gen + "-p a --prompt-file " + w.data, "not both"}, {gen + "--system x", "--chat"},
        {convert + "--level 23", "--level"},    {convert + "--codec zlib --level 12", "--level"},
    };
    for (const auto& [command, flag] : cases) {
        SCOPED_TRACE(command);
        const auto r = test::run(command);
        const std::string tool = command.substr(command.rfind('/', command.find(' ')) + 1,
                                                command.find(' ') - command.rfind('/', command.find(' ')) - 1);
        expect_one_line(r, 2, tool, flag);
        EXPECT_NE(r.err.find("usage error"), std::string::npos);
    }
    EXPECT_FALSE(fs::exists(w.p("x.bin")));
}

TEST(CliChecks, ConversionsWriteBesideTheInputWithoutOutputFlag) {
    test::TempDir dir;
    Checkpoint ck;
    ck.weights = test::random_weights(test::tiny_config(), 4);
    write_blzt(ck, dir.path("m.bin"));
    auto r = test::run(kConvert + " export-hf " + dir.path("m.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fs::exists(dir.path("m-hf/model.safetensors")));
    EXPECT_TRUE(fs::exists(dir.path("m-hf/config.json")));
    r = test::run(kConvert + " hf " + dir.path("m-hf/model.safetensors"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("writing " + dir.path("m-hf/model.bin") + " (no -o given)"), std::string::npos) << r.err;
    EXPECT_TRUE(fs::exists(dir.path("m-hf/model.bin")));
    r = test::run(kConvert + " pack " + dir.path("m.bin") + " --codec zstd -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;  // -q after the subcommand silences the result lines
    EXPECT_TRUE(r.err.empty()) << r.err;
    EXPECT_TRUE(fs::exists(dir.path("m.int8.zstd")));
    r = test::run(kConvert + " unpack " + dir.path("m.int8.zstd"));
    expect_one_line(r, 1, "ane-convert", dir.path("m.bin") + ": already exists");
    r = test::run(kConvert + " export-gguf " + dir.path("m.bin") + " -v");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fs::exists(dir.path("m.gguf")));
    r = test::run(kConvert + " export-gguf " + dir.path("m.gguf") + " --type f16");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(fs::exists(dir.path("m.f16.gguf")));
}

TEST(CliChecks, TimeBudgetAloneRunsUntilTheTimeIsSpent) {
    Workspace w;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = test::run(w.train(w.p("t.bin"), "--time 1.5 --eval-every 0 -q --log-json " + w.p("t.jsonl")));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GE(seconds, 1.5);
    const Checkpoint ck = read_blzt(w.p("t.bin"));
    EXPECT_GT(ck.state.step, 1);
    EXPECT_EQ(ck.metadata["train"]["settings"]["steps"], 0);
    EXPECT_EQ(ck.metadata["train"]["settings"]["time_budget"], 1.5);
    EXPECT_GE(ck.state.cum_wall_ms, 1500.0);
    // The schedule follows the time: after warmup the rate falls toward the floor.
    const auto log = test::read_bytes(w.p("t.jsonl"));
    std::vector<double> lrs;
    for (const auto& line : [&] {
             std::vector<std::string> lines;
             std::string cur;
             for (char ch : log) {
                 if (ch == '\n') {
                     lines.push_back(cur);
                     cur.clear();
                 } else {
                     cur += ch;
                 }
             }
             return lines;
         }())
        lrs.push_back(nlohmann::json::parse(line)["lr"].get<double>());
    ASSERT_GT(lrs.size(), 1u);
    if (lrs.size() > 120) {  // past the 100 warmup updates, the cosine has moved with the clock
        const double peak = *std::max_element(lrs.begin(), lrs.end());
        EXPECT_LT(lrs.back(), 0.95 * peak);
    }
}

TEST(CliChecks, MezoTimeBudgetAloneRunsUntilTheTimeIsSpent) {
    Workspace w;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = test::run(kMezo + " --init " + w.model + " --data " + w.data + " -o " + w.p("z.bin") +
                             " --time 1 --eval-every 0 --threads 1 -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
    const Checkpoint ck = read_blzt(w.p("z.bin"));
    EXPECT_GT(ck.state.step, 1);
    EXPECT_EQ(ck.metadata["mezo"]["settings"]["steps"], 0);
}

TEST(CliChecks, EvalWindowDefaultsToTheContextCappedAt1024) {
    Workspace w(2048);  // a converted model may declare a long context
    auto r = test::run(kEval + " " + w.model + " --data " + w.data + " --threads 1 --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["seq"], 1024);
    Workspace small(16);
    r = test::run(kEval + " " + small.model + " --data " + small.data + " --threads 1 --json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["seq"], 16);
    // -q: the result lines only.
    r = test::run(kEval + " " + small.model + " --data " + small.data + " --threads 1 -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("val_loss: ", 0), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

TEST(CliChecks, NonFiniteWeightsAreAnErrorNotANull) {
    Workspace w;
    Checkpoint ck = read_blzt(w.model);
    ck.weights.layers[0].wq[0] = std::numeric_limits<float>::quiet_NaN();
    write_blzt(ck, w.p("nan.bin"));
    const auto r = test::run(kEval + " " + w.p("nan.bin") + " --data " + w.data + " --threads 1 --json");
    expect_one_line(r, 1, "ane-eval", "not a finite number");
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(CliChecks, TokenizerVocabularyMismatchIsNamed) {
    const std::string tok512 = test::shared_data("stories260K-llama2c/tok512.bin");
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    const std::string stories = test::shared_data("stories260K-llama2c/stories260K.bin");
    ANE_REQUIRE_SHARED(tok512);
    ANE_REQUIRE_SHARED(gguf);
    test::TempDir dir;
    ModelConfig c = test::tiny_config();
    c.vocab = 1024;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 6);
    write_blzt(ck, dir.path("m1024.bin"));
    auto r = test::run(kGenerate + " " + dir.path("m1024.bin") + " -t " + tok512 + " -p hi -n 4");
    expect_one_line(r, 1, "ane-generate", "vocabulary mismatch: the tokenizer has 512 tokens");
    std::vector<std::uint16_t> tokens(100, 5);
    write_token_file(dir.path("v.bin"), tokens, TokenFormat::Raw);
    r = test::run(kEval + " " + dir.path("m1024.bin") + " --data " + dir.path("v.bin") + " -t " + tok512);
    expect_one_line(r, 1, "ane-eval", "vocabulary mismatch");
    // A GGUF's vocabulary works as --tokenizer in ane-generate as in ane-convert tokens.
    r = test::run(kGenerate + " " + stories + " -t " + gguf + " -p 'Once upon' -n 8 --temperature 0 --threads 1");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Once upon", 0), 0u) << r.out;
}

TEST(CliChecks, PromptFileMustBeAFile) {
    Workspace w;
    fs::create_directory(w.p("prompts"));
    const auto r = test::run(kGenerate + " " + w.model + " --prompt-file " + w.p("prompts"));
    expect_one_line(r, 1, "ane-generate", "is a directory");
}
