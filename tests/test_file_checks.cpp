// FileChecks (what tools check before work), reading streams, and the score tokenizer's
// queue-based merging against the plain rescanning it replaces.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "ane/error.hpp"
#include "ane/file_checks.hpp"
#include "ane/file_io.hpp"
#include "ane/score_tokenizer.hpp"
#include "test_util.hpp"

using namespace ane;
namespace fs = std::filesystem;

TEST(FileChecks, OutputsMustBeNewWritableAndDistinct) {
    test::TempDir dir;
    test::write_bytes(dir.path("in.bin"), {1, 2});
    FileChecks checks(false);
    checks.input(dir.path("in.bin"), "--data");
    EXPECT_NO_THROW(checks.output(dir.path("out.bin"), "-o"));
    EXPECT_THROW(checks.output(dir.path("out.bin"), "--val-output"), UsageError);           // two outputs, one file
    EXPECT_THROW(checks.output(dir.path("sub/../in.bin"), "--other"), Error);               // exists: needs --force
    FileChecks forced(true);
    forced.input(dir.path("in.bin"), "--data");
    EXPECT_THROW(forced.output(dir.path("./in.bin"), "-o"), UsageError);                    // the input by another name
    EXPECT_THROW(forced.output(dir.path(""), "-o"), Error);                                 // a directory
    EXPECT_THROW(forced.output(dir.path("missing/x.bin"), "-o"), Error);                    // no such directory
    EXPECT_THROW(forced.output("-", "-o"), UsageError);
    EXPECT_NO_THROW(forced.output(dir.path("in.bin.copy"), "-o"));
    FileChecks owned(false);
    EXPECT_NO_THROW(owned.output(dir.path("in.bin"), "-o", /*may_exist=*/true));
    // Standard input can feed one input only.
    FileChecks stdin_twice(false);
    stdin_twice.input("-", "--data");
    EXPECT_THROW(stdin_twice.input("-", "--val"), UsageError);
    // No probe file is left behind.
    for (const auto& e : fs::directory_iterator(dir.path("")))
        EXPECT_EQ(e.path().filename().string().find(".ane-probe"), std::string::npos);
}

TEST(FileChecks, OutputDirectoryIsCreatedAndItsFilesChecked) {
    test::TempDir dir;
    FileChecks checks(false);
    checks.output_directory(dir.path("hf"), {"model.safetensors", "config.json"}, "-o");
    EXPECT_TRUE(fs::is_directory(dir.path("hf")));
    test::write_bytes(dir.path("hf/config.json"), {'{', '}'});
    FileChecks again(false);
    EXPECT_THROW(again.output_directory(dir.path("hf"), {"model.safetensors", "config.json"}, "-o"), Error);
    test::write_bytes(dir.path("file"), {1});
    FileChecks not_a_dir(true);
    EXPECT_THROW(not_a_dir.output_directory(dir.path("file"), {"config.json"}, "-o"), Error);
}

TEST(MappedFile, ReadsAFifoOnceAndKeepsItsBytes) {
    test::TempDir dir;
    const std::string fifo = dir.path("pipe");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    std::vector<std::uint8_t> bytes(300000);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::uint8_t(i * 31);
    std::thread writer([&] { test::write_bytes(fifo, bytes); });
    const MappedFile first(fifo);
    writer.join();
    ASSERT_EQ(first.size(), bytes.size());
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), first.data()));
    const MappedFile again(fifo);  // a reader that sniffs, then reads, sees the same stream
    EXPECT_EQ(again.size(), bytes.size());
    EXPECT_EQ(read_text_file(fifo).size(), bytes.size());
}

TEST(AtomicWriter, FinishThenPublishAndAStaleTemporaryIsReused) {
    test::TempDir dir;
    const std::string path = dir.path("f.bin");
    test::write_bytes(temporary_path(path), std::vector<std::uint8_t>(1000, 7));  // left by a killed run
    {
        AtomicWriter w(path);
        w.put(std::uint32_t(42));
        w.finish();
        EXPECT_FALSE(fs::exists(path));
        w.publish();
    }
    EXPECT_EQ(fs::file_size(path), 4u);
    EXPECT_FALSE(fs::exists(temporary_path(path)));
    {
        AtomicWriter w(path);
        w.put(std::uint32_t(1));
        w.finish();
    }  // never published: the old file stays, the temporary goes
    EXPECT_EQ(test::read_bytes(path), (std::vector<std::uint8_t>{42, 0, 0, 0}));
    EXPECT_FALSE(fs::exists(temporary_path(path)));
}

namespace {

// llama2.c's encoder: rescan every adjacent pair, merge the best (the leftmost of equals).
std::vector<int> rescanning_merge(const Tokenizer& tok, std::vector<int> ids) {
    std::map<std::string, int> index;
    for (int id = 0; id < tok.vocab_size(); ++id)
        if (tok.kind(id) == TokenKind::Normal) index.emplace(tok.piece(id), id);
    for (;;) {
        float best = -1e30f;
        int best_id = -1;
        std::size_t at = 0;
        for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
            const auto it = index.find(tok.piece(ids[i]) + tok.piece(ids[i + 1]));
            if (it != index.end() && tok.score(it->second) > best) {
                best = tok.score(it->second);
                best_id = it->second;
                at = i;
            }
        }
        if (best_id < 0) return ids;
        ids[at] = best_id;
        ids.erase(ids.begin() + std::ptrdiff_t(at) + 1);
    }
}

}  // namespace

TEST(ScoreTokenizer, QueueMergingEqualsRescanning) {
    const std::string path = test::shared_data("stories260K-llama2c/tok512.bin");
    ANE_REQUIRE_SHARED(path);
    const auto tok = load_llama2c_tokenizer(path);
    std::mt19937 rng(3);
    const std::string alphabet = "aeiou tnsrhl.,etaoin shrdlu";
    for (int trial = 0; trial < 40; ++trial) {
        std::string text;
        const int n = 1 + int(rng() % 400);
        for (int i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
        const std::vector<int> ids = tok->encode(text);
        // Starting from single characters (after the dummy-prefix space), the reference must
        // reach the same ids.
        std::map<std::string, int> single;
        for (int id = 0; id < tok->vocab_size(); ++id) single.emplace(tok->piece(id), id);
        std::vector<int> chars;
        for (char ch : " " + text) {
            const std::string piece = ch == ' ' ? std::string("\xE2\x96\x81") : std::string(1, ch);
            ASSERT_TRUE(single.count(piece)) << piece;
            chars.push_back(single[piece]);
        }
        EXPECT_EQ(ids, rescanning_merge(*tok, chars)) << text;
    }
}
