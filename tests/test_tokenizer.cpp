#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/tokenizer.hpp"
#include "test_util.hpp"

using namespace ane;
using nlohmann::json;

namespace {
json load_json(const std::string& path) { return json::parse(read_text_file(path)); }
}  // namespace

// llama2.c's test.c prompts, ids from Meta's tokenizer with BOS prepended.
TEST(Tokenizer, ReproducesLlama2cTestPromptEncodings) {
    const std::string expected = test::shared_data("reference-outputs/llama2_tokenizer_testc_expected.json");
    const std::string model = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    ANE_REQUIRE_SHARED(expected);
    ANE_REQUIRE_SHARED(model);
    const auto tok = load_tokenizer(model);
    EXPECT_EQ(tok->vocab_size(), 32000);
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_id(), 2);
    const json j = load_json(expected);
    ASSERT_EQ(j["cases"].size(), 5u);
    for (const auto& c : j["cases"]) {
        std::vector<int> ids = {tok->bos_id()};
        for (int id : tok->encode(c["text"].get<std::string>())) ids.push_back(id);
        EXPECT_EQ(ids, c["expected_ids_with_bos"].get<std::vector<int>>()) << c["text"];
    }
}

TEST(Tokenizer, ReproducesSentencePieceReferenceEncodings) {
    const std::string expected = test::shared_data("reference-outputs/sentencepiece_reference_encodings.json");
    ANE_REQUIRE_SHARED(expected);
    const json j = load_json(expected);
    int checked = 0;
    for (const auto& [name, t] : j["tokenizers"].items()) {
        const std::string model = test::shared_data(t["model_file"].get<std::string>());
        ANE_REQUIRE_SHARED(model);
        const auto tok = load_tokenizer(model);
        EXPECT_EQ(tok->vocab_size(), t["vocab_size"].get<int>());
        EXPECT_EQ(tok->bos_id(), t["bos_id"].get<int>());
        EXPECT_EQ(tok->eos_id(), t["eos_id"].get<int>());
        for (const auto& c : t["cases"]) {
            const std::vector<int> ids = tok->encode(c["text"].get<std::string>());
            EXPECT_EQ(ids, c["ids"].get<std::vector<int>>()) << name << ": " << c["text"];
            // The reference lists the surface text of unknown pieces; the vocabulary says <unk>.
            const auto want_pieces = c["pieces"].get<std::vector<std::string>>();
            ASSERT_EQ(want_pieces.size(), ids.size());
            for (std::size_t i = 0; i < ids.size(); ++i) {
                if (tok->kind(ids[i]) != TokenKind::Unknown) {
                    EXPECT_EQ(tok->piece(ids[i]), want_pieces[i]) << name;
                }
            }
            EXPECT_EQ(tok->decode(ids), c["decoded"].get<std::string>()) << name;
            ++checked;
        }
    }
    EXPECT_EQ(checked, 24);
}

// Whenever a tokenizer reproduces a text exactly, the bits-per-byte rule's byte counts of
// its tokens (after BOS) add up to the text's UTF-8 length. Runs of spaces are left out:
// the rule counts an inner '▁' as its 3 UTF-8 bytes, as parameter-golf does.
TEST(Tokenizer, ByteCountsAddUpToTheTextLength) {
    const std::string expected = test::shared_data("reference-outputs/sentencepiece_reference_encodings.json");
    ANE_REQUIRE_SHARED(expected);
    const json j = load_json(expected);
    int checked = 0;
    for (const auto& [name, t] : j["tokenizers"].items()) {
        const auto tok = load_tokenizer(test::shared_data(t["model_file"].get<std::string>()));
        const ByteCounter counter(*tok);
        for (const auto& c : t["cases"]) {
            const std::string text = c["text"].get<std::string>();
            if (c["decoded"] != text || text.find("  ") != std::string::npos) continue;
            const auto ids = tok->encode(text);
            EXPECT_EQ(counter.count(ids, tok->bos_id()), std::int64_t(text.size())) << name << ": " << text;
            ++checked;
        }
    }
    EXPECT_GE(checked, 10);
}

// A hand-worked example with the Llama 2 vocabulary.
TEST(Tokenizer, ByteRuleByHand) {
    const std::string model = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    ANE_REQUIRE_SHARED(model);
    const auto tok = load_tokenizer(model);
    const ByteCounter counter(*tok, 32005);
    EXPECT_EQ(counter.table_size(), 32005);
    // <unk> 0, <s> 1, </s> 2: control/unknown, 0 bytes, boundaries.
    for (int id : {0, 1, 2}) {
        EXPECT_EQ(counter.base_bytes(id), 0);
        EXPECT_TRUE(counter.is_boundary(id));
    }
    EXPECT_TRUE(counter.is_boundary(32003));  // a model's padding row past the tokenizer
    EXPECT_EQ(tok->piece(13), "<0x0A>");
    EXPECT_EQ(counter.base_bytes(13), 1);  // byte fallback
    EXPECT_EQ(tok->piece(306), "\xE2\x96\x81I");
    EXPECT_EQ(counter.base_bytes(306), 1);
    EXPECT_TRUE(counter.has_leading_space(306));
    EXPECT_EQ(counter.bytes(1, 306), 1);    // after BOS: no space
    EXPECT_EQ(counter.bytes(13, 306), 2);   // after a newline byte: the space counts
    EXPECT_EQ(counter.bytes(-1, 306), 1);   // at the start of a stream
    // "▁believe" (4658): 7 bytes + 1 space after "▁I".
    EXPECT_EQ(counter.bytes(306, 4658), 8);
    const std::vector<int> ids = {1, 306, 4658, 13, 306};
    EXPECT_EQ(counter.count(ids), 0 + 1 + 8 + 1 + 2);
}

TEST(Tokenizer, BadModelFilesAreClearErrors) {
    test::TempDir dir;
    EXPECT_THROW(load_tokenizer(dir.path("missing.model")), Error);
    test::write_bytes(dir.path("junk.model"), {'n', 'o', 'p', 'e'});
    try {
        load_tokenizer(dir.path("junk.model"));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("junk.model"), std::string::npos);
    }
}

// The score-merge tokenizer (llama.cpp's GGUF `llama` vocabulary, words merged on their own)
// gives SentencePiece's own ids for the same Llama 2 vocabulary on a long text.
TEST(Tokenizer, ScoreMergeMatchesSentencePieceOnABook) {
    const std::string gguf = test::shared_data("llamacpp-vocab-tests/ggml-vocab-llama-spm.gguf");
    const std::string model = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    const std::string book = test::shared_data("corpus-war-and-peace/war-and-peace.txt");
    ANE_REQUIRE_SHARED(gguf);
    ANE_REQUIRE_SHARED(model);
    ANE_REQUIRE_SHARED(book);
    auto bytes = test::read_bytes(book);
    bytes.resize(200000);
    const std::string text(bytes.begin(), bytes.end());
    const auto ours = load_tokenizer(gguf)->encode(text);
    const auto spm = load_tokenizer(model)->encode(text);
    ASSERT_EQ(ours.size(), spm.size());
    EXPECT_TRUE(ours == spm);
}
