// Byte-level BPE from tokenizer.json: Qwen3's and Llama 3's files encode every string of their
// expected encodings (made with Hugging Face's tokenizers) to exactly those ids, and llama.cpp's
// vocabulary test strings to its ids; decoding gives the text back.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ane/bpe_tokenizer.hpp"
#include "ane/error.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/gguf_tokenizer.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string show(const std::vector<int>& ids) {
    std::string s;
    for (int id : ids) s += std::to_string(id) + " ";
    return s;
}

void expect_hf_encodings(const std::string& folder) {
    const std::string dir = test::shared_data(folder);
    ANE_REQUIRE_SHARED(dir + "/tokenizer.json");
    const auto tok = load_tokenizer(dir + "/tokenizer.json");
    const auto expected = nlohmann::json::parse(read_text(dir + "/expected_encodings.json"));
    EXPECT_EQ(tok->vocab_size(), expected["vocab_size_with_added"].get<int>());
    int cases = 0;
    for (const auto& c : expected["cases"]) {
        const std::string text = c["text"].get<std::string>();
        const auto want = c["ids"].get<std::vector<int>>();
        const auto got = tok->encode(text);
        EXPECT_EQ(got, want) << folder << " case " << cases << " (" << c["source"] << "): " << text << "\n got  "
                             << show(got) << "\n want " << show(want);
        EXPECT_EQ(tok->decode(got), text) << folder << " case " << cases;
        ++cases;
    }
    EXPECT_GT(cases, 40);
}

// llama.cpp's test files (under ../shared/data): inputs separated by "\n__ggml_vocab_test__\n",
// one line of ids each.
void expect_llamacpp_encodings(const Tokenizer& tok, const std::string& inp, const std::string& out) {
    const std::string inputs = read_text(test::shared_data(inp));
    std::vector<std::string> texts;
    const std::string sep = "\n__ggml_vocab_test__\n";
    for (std::size_t at = 0; at < inputs.size();) {
        const auto end = inputs.find(sep, at);
        texts.push_back(inputs.substr(at, end == std::string::npos ? std::string::npos : end - at));
        at = end == std::string::npos ? inputs.size() : end + sep.size();
    }
    std::istringstream lines(read_text(test::shared_data(out)));
    std::size_t i = 0;
    for (std::string line; std::getline(lines, line) && i < texts.size(); ++i) {
        std::vector<int> want;
        std::istringstream ids(line);
        for (int id; ids >> id;) want.push_back(id);
        EXPECT_EQ(tok.encode(texts[i]), want) << inp << " #" << i << ": " << texts[i];
    }
    EXPECT_GT(i, 40u);
}

TEST(BpeTokenizer, Qwen3MatchesHuggingFace) { expect_hf_encodings("tokenizer-qwen3"); }
TEST(BpeTokenizer, Llama3MatchesHuggingFace) { expect_hf_encodings("tokenizer-llama3"); }

// The tokenizer at a path under ../shared/data against llama.cpp's file pair `test`.inp/.out.
void expect_llamacpp_file(const std::string& tokenizer, const std::string& test) {
    ANE_REQUIRE_SHARED(test::shared_data(tokenizer));
    ANE_REQUIRE_SHARED(test::shared_data(test + ".inp"));
    expect_llamacpp_encodings(*load_tokenizer(test::shared_data(tokenizer)), test + ".inp", test + ".out");
}

TEST(BpeTokenizer, Qwen3MatchesLlamaCppQwen2Vocabulary) {
    expect_llamacpp_file("tokenizer-qwen3/tokenizer.json", "tokenizer-qwen3/llamacpp-qwen2");
}

TEST(BpeTokenizer, Llama3MatchesLlamaCppLlamaBpeVocabulary) {
    expect_llamacpp_file("tokenizer-llama3/tokenizer.json", "tokenizer-llama3/llamacpp-llama-bpe");
}

TEST(BpeTokenizer, Gpt2GgufMatchesLlamaCpp) {
    expect_llamacpp_file("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf", "llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf");
}

// tokenizer.json -> GGUF gpt2 vocabulary (what export-gguf writes) -> read back: llama.cpp's
// test strings still give llama.cpp's ids.
TEST(BpeTokenizer, GgufExportOfQwen3AndLlama3ReadsBackTheSame) {
    for (const auto& [folder, test] : {std::pair{"tokenizer-qwen3", "llamacpp-qwen2"},
                                       std::pair{"tokenizer-llama3", "llamacpp-llama-bpe"}}) {
        const std::string dir = test::shared_data(folder);
        ANE_REQUIRE_SHARED(dir + "/tokenizer.json");
        const auto tok = load_tokenizer(dir + "/tokenizer.json");
        const auto kv = gguf_metadata_from_tokenizer(*tok);
        const auto find = [&](const std::string& key) -> const GgufValue& {
            for (const auto& [k, v] : kv)
                if (k == key) return v;
            throw std::runtime_error("no " + key);
        };
        EXPECT_EQ(find("tokenizer.ggml.model").s, "gpt2");
        EXPECT_EQ(find("tokenizer.ggml.pre").s, std::string(test) == "llamacpp-qwen2" ? "qwen2" : "llama-bpe");
        test::TempDir tmp;
        const std::string path = tmp.path("vocab.gguf");
        test::write_bytes(path, encode_vocab_only_gguf(kv));
        const auto back = load_tokenizer(path);
        EXPECT_EQ(back->vocab_size(), tok->vocab_size());
        EXPECT_EQ(back->eos_id(), tok->eos_id());
        EXPECT_EQ(back->bos_id(), tok->bos_id());
        expect_llamacpp_encodings(*back, std::string(folder) + "/" + test + ".inp",
                                  std::string(folder) + "/" + test + ".out");
    }
}

TEST(BpeTokenizer, SpecialTokensAndConfig) {
    const std::string dir = test::shared_data("tokenizer-qwen3");
    ANE_REQUIRE_SHARED(dir + "/tokenizer.json");
    const auto tok = load_tokenizer(dir + "/tokenizer.json");
    EXPECT_EQ(tok->piece(tok->eos_id()), "<|im_end|>");  // tokenizer_config.json's eos_token
    EXPECT_EQ(tok->bos_id(), -1);                       // Qwen adds none
    const auto ids = tok->encode("<|im_start|>user\nhi<|im_end|>");
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(tok->kind(ids.front()), TokenKind::Control);
    EXPECT_EQ(tok->token_text(-1, ids.front()), "");  // control tokens print nothing while streaming
    // Bits per byte: a token counts the UTF-8 bytes it decodes to ("Ġhello" is 6).
    const ByteCounter bytes(*tok);
    const auto hello = tok->encode(" hello");
    ASSERT_EQ(hello.size(), 1u);
    EXPECT_EQ(bytes.bytes(-1, hello[0]), 6);
    EXPECT_EQ(bytes.count(tok->encode("naïve café 你好")), std::int64_t(std::string("naïve café 你好").size()));
}

TEST(BpeTokenizer, UnsupportedFilesAreRefusedByName) {
    const auto refuse = [](const std::string& json, const std::string& what) {
        try {
            hf_tokenizer_from_json(json, "", "t.json");
            ADD_FAILURE() << "accepted: " << json;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
        }
    };
    refuse(R"({"model": {"type": "Unigram", "vocab": []}})", "tokenizer model Unigram");
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "NFKC"},
               "pre_tokenizer": {"type": "ByteLevel"}})", "normalizer NFKC");
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}})",
           "pre-tokenizer Metaspace");
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}})",
           "names a token the vocabulary lacks");
    refuse("{not json", "not valid JSON");
}

}  // namespace
}  // namespace ane
