// Byte-level BPE from tokenizer.json: Qwen3's and Llama 3's files encode every string of their
// expected encodings (made with Hugging Face's tokenizers) to exactly those ids, and llama.cpp's
// vocabulary test strings to its ids; decoding gives the text back.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <unordered_map>
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
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "WhitespaceSplit"}})",
           "pre-tokenizer WhitespaceSplit");
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": null})",
           "neither a ByteLevel nor a Metaspace");
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"},
               "decoder": {"type": "WordPiece"}})", "decoder WordPiece");
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Prepend", "prepend": "_"},
               "pre_tokenizer": {"type": "ByteLevel"}})", "Prepend normalizer");
    refuse(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}})",
           "names a token the vocabulary lacks");
    refuse("{not json", "not valid JSON");
}

// GPT-2's vocabulary and merges as Stanford CS336 ships them (OpenAI's encoder.json and
// vocab.bpe), put in a tokenizer.json: its texts encode as Hugging Face's tokenizers 0.23.2
// encodes them (lengths and first ids recorded from it), as llama.cpp's GPT-2 GGUF vocabulary
// does (all ids), and decode back to the bytes they came from.
TEST(BpeTokenizer, Cs336Gpt2FixturesMatchHuggingFaceAndLlamaCpp) {
    const std::string dir = test::shared_data("gpt2-bpe-cs336-fixtures");
    const std::string gguf = test::shared_data("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf");
    ANE_REQUIRE_SHARED(dir + "/gpt2_vocab.json");
    ANE_REQUIRE_SHARED(gguf);
    nlohmann::json j;
    j["model"] = {{"type", "BPE"}, {"vocab", nlohmann::json::parse(read_text(dir + "/gpt2_vocab.json"))},
                  {"merges", nlohmann::json::array()}};
    std::istringstream merges(read_text(dir + "/gpt2_merges.txt"));
    for (std::string line; std::getline(merges, line);)
        if (!line.empty()) j["model"]["merges"].push_back(line);
    j["added_tokens"] = {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}};
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
    j["decoder"] = {{"type", "ByteLevel"}};
    const auto tok = hf_tokenizer_from_json(j.dump(), "", "gpt2 tokenizer.json");
    const auto llama_cpp = load_tokenizer(gguf);
    struct Want {
        const char* file;
        std::size_t count;
        std::vector<int> first;
    };
    for (const Want& w : {Want{"address.txt", 320, {15137, 4776, 290, 3598, 812, 2084, 674, 17150, 3181, 6071, 11, 319}},
                          Want{"german.txt", 190, {32423, 406, 8822, 13863, 20000, 2059, 357, 74, 333, 89, 13863, 2059}},
                          Want{"tinystories_sample.txt", 923, {198, 7454, 2402, 257, 640, 612, 373, 257, 1310, 2933, 3706, 3932}}}) {
        const std::string text = read_text(dir + "/" + w.file);
        const auto ids = tok->encode(text);
        EXPECT_EQ(ids.size(), w.count) << w.file;
        EXPECT_EQ(std::vector<int>(ids.begin(), ids.begin() + std::ptrdiff_t(std::min(ids.size(), w.first.size()))), w.first)
            << w.file;
        EXPECT_EQ(ids, llama_cpp->encode(text)) << w.file;
        EXPECT_EQ(tok->decode(ids), text) << w.file;
    }
    // The stories' separators are the special token, once each.
    const std::string stories = read_text(dir + "/tinystories_sample.txt");
    const auto ids = tok->encode(stories);
    std::size_t separators = 0;
    for (auto at = stories.find("<|endoftext|>"); at != std::string::npos; at = stories.find("<|endoftext|>", at + 1))
        ++separators;
    EXPECT_GT(separators, 0u);
    EXPECT_EQ(std::size_t(std::count(ids.begin(), ids.end(), 50256)), separators);
}

// A tiny SentencePiece-style (Metaspace, byte fallback) tokenizer.json in the four forms such
// files take; the expected ids and texts were made with Hugging Face's tokenizers 0.23.2
// (its npm binding) from the same files.
nlohmann::json tiny_metaspace_json(const std::string& form) {
    using nlohmann::json;
    const std::vector<std::string> special = {"<unk>", "<s>", "</s>"};
    std::vector<std::string> vocab = special;
    for (const char* p : {"<0x0A>", "<0xE2>", "<0x82>", "<0xAC>", "\u2581", "h", "e", "l", "o", "w", "r", "d", "!"})
        vocab.push_back(p);
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"\u2581", "h"}, {"l", "l"}, {"\u2581h", "e"}, {"\u2581he", "ll"}, {"\u2581hell", "o"}, {"\u2581", "w"},
        {"o", "r"}, {"\u2581w", "or"}, {"\u2581wor", "l"}, {"\u2581worl", "d"}, {"\u2581", "\u2581"}};
    json j, v = json::object(), m = json::array(), added = json::array();
    for (const auto& [a, b] : merges) vocab.push_back(a + b);
    for (std::size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
    for (const auto& [a, b] : merges) m.push_back({a, b});
    for (std::size_t i = 0; i < special.size(); ++i) added.push_back({{"id", i}, {"content", special[i]}, {"special", true}});
    j["added_tokens"] = added;
    j["model"] = {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", form != "nofallback"},
                  {"vocab", v}, {"merges", m}};
    const json strip = {{"type", "Sequence"},
                        {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                                      {{"type", "ByteFallback"}},
                                      {{"type", "Fuse"}},
                                      {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
    const auto metaspace = [](const char* scheme, bool split) {
        return json{{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", scheme}, {"split", split}};
    };
    if (form == "legacy") {
        j["normalizer"] = {{"type", "Sequence"},
                           {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}},
                                            {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}};
        j["pre_tokenizer"] = nullptr;
        j["decoder"] = strip;
    } else if (form == "first_nosplit") {
        j["pre_tokenizer"] = metaspace("first", false);
        j["decoder"] = metaspace("first", false);
    } else {
        j["pre_tokenizer"] = metaspace("always", true);
        j["decoder"] = strip;
    }
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}}}}}}};
    return j;
}

TEST(BpeTokenizer, MetaspaceFormsMatchHuggingFace) {
    const std::vector<std::string> cases = {"hello world", " hello  world", "hello\nworld\u20ac", "hello<s> world",
                                            "xyz hello", "", "  "};
    struct Want {
        const char* form;
        std::vector<std::vector<int>> ids;
        std::vector<std::string> text;
    };
    const std::vector<Want> wants = {
        {"legacy",
         {{20, 25}, {7, 20, 7, 25}, {20, 3, 12, 22, 10, 14, 4, 5, 6}, {20, 1, 7, 25}, {7, 0, 20}, {}, {26, 7}},
         {"hello world", " hello  world", "hello\nworld\u20ac", "hello<s>  world", "<unk> hello", "", "  "}},
        {"first_nosplit",
         {{20, 25}, {20, 7, 25}, {20, 3, 12, 22, 10, 14, 4, 5, 6}, {20, 1, 25}, {7, 0, 20}, {}, {26}},
         {"hello world", "hello  world", "hello<0x0A>world<0xE2><0x82><0xAC>", "hello<s> world", "<unk> hello", "", ""}},
        {"always_split",
         {{20, 25}, {20, 7, 25}, {20, 3, 12, 22, 10, 14, 4, 5, 6}, {20, 1, 25}, {7, 0, 20}, {}, {7, 7}},
         {"hello world", "hello  world", "hello\nworld\u20ac", "hello<s> world", "<unk> hello", "", " "}},
        {"nofallback",
         {{20, 25}, {20, 7, 25}, {20, 0, 12, 22, 10, 14, 0}, {20, 1, 25}, {7, 0, 20}, {}, {7, 7}},
         {"hello world", "hello  world", "hello<unk>world<unk>", "hello<s> world", "<unk> hello", "", " "}},
    };
    for (const auto& w : wants) {
        const auto tok = hf_tokenizer_from_json(tiny_metaspace_json(w.form).dump(), "", w.form);
        EXPECT_EQ(tok->bos_id(), 1);
        EXPECT_FALSE(tok->byte_level());
        for (std::size_t i = 0; i < cases.size(); ++i) {
            EXPECT_EQ(tok->encode(cases[i]), w.ids[i]) << w.form << ": " << cases[i];
            EXPECT_EQ(tok->decode(w.ids[i]), w.text[i]) << w.form << ": " << cases[i];
        }
    }
}

// The Llama 2 SentencePiece model turned into a tokenizer.json the way Hugging Face's converter
// does it (every token that splits into two tokens gives a merge, ordered by the token's
// score, then by the ids of the halves); it then tokenizes as SentencePiece does.
TEST(BpeTokenizer, SentencePieceConvertedToTokenizerJsonMatchesSentencePiece) {
    const std::string model = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    const std::string text = test::shared_data("corpus-war-and-peace/war-and-peace.txt");
    ANE_REQUIRE_SHARED(model);
    ANE_REQUIRE_SHARED(text);
    const auto sp = load_tokenizer(model);
    nlohmann::json j = tiny_metaspace_json("legacy");
    nlohmann::json vocab = nlohmann::json::object();
    std::unordered_map<std::string, int> id_of;
    for (int id = 0; id < sp->vocab_size(); ++id) {
        vocab[sp->piece(id)] = id;
        id_of[sp->piece(id)] = id;
    }
    std::vector<int> by_score(std::size_t(sp->vocab_size()));
    std::iota(by_score.begin(), by_score.end(), 0);
    std::stable_sort(by_score.begin(), by_score.end(), [&](int a, int b) { return sp->score(a) > sp->score(b); });
    nlohmann::json merges = nlohmann::json::array();
    for (int id : by_score) {
        const std::string p = sp->piece(id);
        std::vector<std::pair<int, int>> local;
        for (std::size_t cut = 1; cut < p.size(); ++cut) {
            if ((static_cast<unsigned char>(p[cut]) & 0xC0) == 0x80) continue;  // inside a character
            const auto l = id_of.find(p.substr(0, cut)), r = id_of.find(p.substr(cut));
            if (l != id_of.end() && r != id_of.end()) local.emplace_back(l->second, r->second);
        }
        std::sort(local.begin(), local.end());
        for (const auto& [l, r] : local) merges.push_back({sp->piece(l), sp->piece(r)});
    }
    j["model"]["vocab"] = vocab;
    j["model"]["merges"] = merges;
    const auto bpe = hf_tokenizer_from_json(j.dump(), "", "llama2 tokenizer.json");
    EXPECT_EQ(bpe->describe(), "BPE (Metaspace, byte fallback), 32000 tokens, " + std::to_string(merges.size()) + " merges");
    std::istringstream lines(read_text(text).substr(0, 400000));
    int checked = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        ++checked;
        ASSERT_EQ(bpe->encode(line), sp->encode(line)) << line;
        ASSERT_EQ(bpe->decode(sp->encode(line)), line);
    }
    EXPECT_GT(checked, 5000);
    // Bits per byte counts the same bytes, and GGUF receives it as a SentencePiece vocabulary
    // whose scores make llama.cpp's merge order this one.
    const std::string para = read_text(text).substr(20000, 30000);
    EXPECT_EQ(ByteCounter(*bpe).count(bpe->encode(para)), ByteCounter(*sp).count(sp->encode(para)));
    const auto kv = gguf_metadata_from_tokenizer(*bpe);
    test::TempDir tmp;
    test::write_bytes(tmp.path("v.gguf"), encode_vocab_only_gguf(kv));
    const auto from_gguf = load_tokenizer(tmp.path("v.gguf"));
    EXPECT_EQ(from_gguf->encode(para), bpe->encode(para));
}

}  // namespace
}  // namespace ane
