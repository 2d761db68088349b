#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "ane/error.hpp"
#include "ane/model_file.hpp"
#include "ane/token_file.hpp"
#include "ane/vocab_map.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {
std::vector<std::uint16_t> some_tokens(std::size_t n) {
    std::vector<std::uint16_t> t(n);
    for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<std::uint16_t>((i * 7919) % 1000);
    return t;
}
}  // namespace

TEST(TokenFile, RawRoundTrip) {
    test::TempDir dir;
    const auto tokens = some_tokens(1001);
    write_token_file(dir.path("t.bin"), tokens, TokenFormat::Raw);
    EXPECT_EQ(test::read_bytes(dir.path("t.bin")).size(), 2002u);
    const TokenFile f(dir.path("t.bin"));
    EXPECT_EQ(f.format(), TokenFormat::Raw);
    ASSERT_EQ(f.size(), tokens.size());
    EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), f.tokens().begin()));
    EXPECT_EQ(detect_file_kind(dir.path("t.bin")), FileKind::TokenRaw);
}

TEST(TokenFile, ShardRoundTripAndHeaderLayout) {
    test::TempDir dir;
    const auto tokens = some_tokens(777);
    write_token_file(dir.path("s.bin"), tokens, TokenFormat::Shard);
    const auto bytes = test::read_bytes(dir.path("s.bin"));
    ASSERT_EQ(bytes.size(), 1024u + 2 * 777);
    std::int32_t header[256];
    std::memcpy(header, bytes.data(), sizeof(header));
    EXPECT_EQ(header[0], 20240520);
    EXPECT_EQ(header[1], 1);
    EXPECT_EQ(header[2], 777);
    for (int i = 3; i < 256; ++i) EXPECT_EQ(header[i], 0);
    const TokenFile f(dir.path("s.bin"));
    EXPECT_EQ(f.format(), TokenFormat::Shard);
    EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), f.tokens().begin()));
    EXPECT_EQ(detect_file_kind(dir.path("s.bin")), FileKind::TokenShard);
}

TEST(TokenFile, Shard32HoldsIdsPastUint16) {
    test::TempDir dir;
    std::vector<std::uint32_t> tokens(501);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = std::uint32_t((i * 104729) % 151669);
    write_token_file(dir.path("s.bin"), tokens, TokenFormat::Shard32);
    const auto bytes = test::read_bytes(dir.path("s.bin"));
    ASSERT_EQ(bytes.size(), 1024u + 4 * 501);
    std::int32_t header[3];
    std::memcpy(header, bytes.data(), sizeof(header));
    EXPECT_EQ(header[0], 20240801);  // llm.c's uint32 shard
    EXPECT_EQ(header[1], 7);
    EXPECT_EQ(header[2], 501);
    const TokenFile f(dir.path("s.bin"));
    EXPECT_EQ(f.format(), TokenFormat::Shard32);
    EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), f.tokens().begin()));
    EXPECT_EQ(f.max_id(), *std::max_element(tokens.begin(), tokens.end()));
    EXPECT_EQ(f.tokens().subspan(100, 3)[2], tokens[102]);
    // uint16 formats refuse what they cannot hold, naming the token, and leave no file.
    try {
        write_token_file(dir.path("r.bin"), tokens, TokenFormat::Raw);
        ADD_FAILURE() << "raw accepted id " << tokens[1];
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token 1 has id 104729"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(dir.path("r.bin")));
    // A uint16 stream written as shard32 reads back the same.
    const auto narrow = some_tokens(300);
    write_token_file(dir.path("w.bin"), narrow, TokenFormat::Shard32);
    EXPECT_TRUE(std::equal(narrow.begin(), narrow.end(), TokenFile(dir.path("w.bin")).tokens().begin()));
}

TEST(TokenFile, BadFilesAreRejectedWithTheirName) {
    test::TempDir dir;
    auto expect_error = [&](const std::vector<std::uint8_t>& bytes, const std::string& fragment) {
        test::write_bytes(dir.path("bad.bin"), bytes);
        try {
            TokenFile f(dir.path("bad.bin"));
            ADD_FAILURE() << "accepted: " << fragment;
        } catch (const Error& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find("bad.bin"), std::string::npos) << msg;
            EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
        }
    };
    expect_error({}, "empty");
    expect_error({1, 2, 3}, "not a whole number");
    write_token_file(dir.path("s.bin"), some_tokens(10), TokenFormat::Shard);
    auto shard = test::read_bytes(dir.path("s.bin"));
    shard.resize(shard.size() - 2);
    expect_error(shard, "shard header says 10 tokens");
    EXPECT_THROW(TokenFile(dir.path("missing.bin")), Error);
}

TEST(TokenFile, IdsPastTheVocabularyAreNamed) {
    test::TempDir dir;
    write_token_file(dir.path("t.bin"), std::vector<std::uint16_t>{1, 2, 600, 3}, TokenFormat::Raw);
    const TokenFile f(dir.path("t.bin"));
    EXPECT_NO_THROW(f.check_vocab(601));
    try {
        f.check_vocab(512);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token 2 has id 600"), std::string::npos) << e.what();
    }
}

TEST(TokenFile, SplitIsNinetyTenByPosition) {
    const TokenSplit s = split_train_val(20'000'000);
    EXPECT_EQ(s.train_tokens, 18'000'000u);
    EXPECT_EQ(s.val_start, 18'000'000u);
    EXPECT_EQ(s.val_tokens, 2'000'000u);
    const TokenSplit odd = split_train_val(1001);
    EXPECT_EQ(odd.train_tokens, 900u);
    EXPECT_EQ(odd.val_tokens, 101u);
}

TEST(VocabMap, CompactIdsRankThePresentIds) {
    const std::vector<std::uint16_t> tokens = {9, 3, 3, 7, 0, 9};
    const VocabMap m = VocabMap::build(tokens, 10);
    EXPECT_EQ(m.compact_vocab(), 4);
    EXPECT_EQ(m.full_vocab(), 10);
    EXPECT_EQ(m.to_compact(0), 0);
    EXPECT_EQ(m.to_compact(3), 1);
    EXPECT_EQ(m.to_compact(7), 2);
    EXPECT_EQ(m.to_compact(9), 3);
    EXPECT_EQ(m.to_compact(5), -1);
    for (int c = 0; c < m.compact_vocab(); ++c) EXPECT_EQ(m.to_compact(m.to_full(c)), c);
    EXPECT_THROW(VocabMap::build(tokens, 9), Error);
}
