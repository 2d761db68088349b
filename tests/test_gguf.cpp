#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include <nlohmann/json.hpp>
#include "ane/formats/ggml_quants.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/gguf_tokenizer.hpp"
#include "ane/score_tokenizer.hpp"
#include "ane/half.hpp"
#include "ane/llama2c.hpp"
#include "ane/model/transformer.hpp"
#include "ane/model_file.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

const std::string kStoriesGguf = "stories260K-gguf/stories260K.gguf";

void put_half(std::vector<std::uint8_t>& b, float v) {
    const std::uint16_t h = float_to_fp16(v);
    b.push_back(std::uint8_t(h & 0xFF));
    b.push_back(std::uint8_t(h >> 8));
}

std::vector<float> logits_of(const Weights& w, const std::vector<std::int32_t>& tokens) {
    auto dev = make_device("cpu", 1);
    Transformer m(w, *dev, 1, VocabMap::identity(w.config.vocab));
    m.forward(tokens.data(), 1, int(tokens.size()));
    return {m.logits(), m.logits() + tokens.size() * std::size_t(w.config.vocab)};
}

}  // namespace

TEST(Ggml, Q8_0AndQ4_0DecodeHandBuiltBlocksExactly) {
    std::vector<std::uint8_t> q8;
    put_half(q8, 0.5f);
    for (int i = 0; i < 32; ++i) q8.push_back(std::uint8_t(std::int8_t(i - 16)));
    float out[32];
    ggml::dequantize(ggml::Type::Q8_0, q8.data(), out, 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 0.5f * float(i - 16));

    std::vector<std::uint8_t> q4;
    put_half(q4, 0.25f);
    for (int i = 0; i < 16; ++i) q4.push_back(std::uint8_t((i & 0xF) | (((15 - i) & 0xF) << 4)));
    ggml::dequantize(ggml::Type::Q4_0, q4.data(), out, 32);
    for (int i = 0; i < 16; ++i) {
        EXPECT_EQ(out[i], 0.25f * float(i - 8));
        EXPECT_EQ(out[i + 16], 0.25f * float(7 - i));
    }
}

// The fallbacks llama-quantize writes where rows are not whole super-blocks (Q4_K_M of a
// 288-wide model): Q4_1 (d, m, nibbles), Q5_0 (d, 32 fifth bits, nibbles; minus 16) and Q5_1
// (d, m, fifth bits, nibbles). Value i < 16 is byte i's low nibble, value 16 + i its high one;
// value i's fifth bit is bit i of the little-endian word.
TEST(Ggml, Q4_1Q5_0AndQ5_1DecodeHandBuiltBlocks) {
    std::uint8_t qs[16];
    for (int i = 0; i < 16; ++i) qs[i] = std::uint8_t((i & 0xF) | (((i * 7 + 3) & 0xF) << 4));
    auto nibble = [&](int i) { return i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4; };
    const std::uint32_t qh = 0xA5C3F00Fu;
    auto high = [&](int i) { return int((qh >> i) & 1u) * 16; };
    auto bytes_of = [](std::uint32_t v) {
        return std::vector<std::uint8_t>{std::uint8_t(v), std::uint8_t(v >> 8), std::uint8_t(v >> 16), std::uint8_t(v >> 24)};
    };
    float out[32];

    std::vector<std::uint8_t> q41;
    put_half(q41, 0.5f);
    put_half(q41, -2.0f);
    q41.insert(q41.end(), qs, qs + 16);
    ggml::dequantize(ggml::Type::Q4_1, q41.data(), out, 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 0.5f * float(nibble(i)) - 2.0f) << "Q4_1 " << i;

    std::vector<std::uint8_t> q50;
    put_half(q50, 0.25f);
    for (auto b : bytes_of(qh)) q50.push_back(b);
    q50.insert(q50.end(), qs, qs + 16);
    ggml::dequantize(ggml::Type::Q5_0, q50.data(), out, 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 0.25f * float(nibble(i) + high(i) - 16)) << "Q5_0 " << i;

    std::vector<std::uint8_t> q51;
    put_half(q51, 0.125f);
    put_half(q51, 1.0f);
    for (auto b : bytes_of(qh)) q51.push_back(b);
    q51.insert(q51.end(), qs, qs + 16);
    ggml::dequantize(ggml::Type::Q5_1, q51.data(), out, 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 0.125f * float(nibble(i) + high(i)) + 1.0f) << "Q5_1 " << i;
}

TEST(Ggml, KQuantsDecodeHandBuiltSuperBlocks) {
    // Q4_K: scales/mins for sub-blocks j < 4 sit in the low 6 bits of bytes j and j+4; for
    // j >= 4 they are split between byte j+4 (low/high nibble) and the top bits of j-4 / j.
    std::vector<std::uint8_t> b;
    put_half(b, 0.5f);   // d
    put_half(b, 0.25f);  // dmin
    std::uint8_t scales[12] = {};
    const int sc[8] = {1, 2, 3, 4, 17, 33, 45, 63}, mn[8] = {0, 1, 2, 3, 20, 40, 50, 62};
    for (int j = 0; j < 4; ++j) {
        scales[j] = std::uint8_t(sc[j]);
        scales[j + 4] = std::uint8_t(mn[j]);
    }
    for (int j = 4; j < 8; ++j) {
        scales[j + 4] = std::uint8_t((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
        scales[j - 4] |= std::uint8_t((sc[j] >> 4) << 6);
        scales[j] |= std::uint8_t((mn[j] >> 4) << 6);
    }
    b.insert(b.end(), scales, scales + 12);
    for (int i = 0; i < 128; ++i) b.push_back(std::uint8_t((i % 16) | (((i * 3) % 16) << 4)));
    float out[256];
    ggml::dequantize(ggml::Type::Q4_K, b.data(), out, 256);
    for (int chunk = 0; chunk < 4; ++chunk)
        for (int l = 0; l < 32; ++l) {
            const int i = chunk * 32 + l;
            const int lo = i % 16, hi = (i * 3) % 16;
            EXPECT_FLOAT_EQ(out[chunk * 64 + l], 0.5f * sc[2 * chunk] * lo - 0.25f * mn[2 * chunk]);
            EXPECT_FLOAT_EQ(out[chunk * 64 + 32 + l], 0.5f * sc[2 * chunk + 1] * hi - 0.25f * mn[2 * chunk + 1]);
        }

    // Q6_K: 4-bit low parts, 2-bit high parts, int8 scale per 16 elements, minus 32.
    std::vector<std::uint8_t> q6(210, 0);
    for (int i = 0; i < 128; ++i) q6[i] = std::uint8_t((i % 16) | ((15 - i % 16) << 4));
    for (int i = 0; i < 64; ++i) q6[128 + i] = std::uint8_t(0b11100100);  // high bits 0,1,2,3
    for (int i = 0; i < 16; ++i) q6[192 + i] = std::uint8_t(std::int8_t(i - 8));
    const std::uint16_t d6 = float_to_fp16(0.125f);
    std::memcpy(&q6[208], &d6, 2);
    ggml::dequantize(ggml::Type::Q6_K, q6.data(), out, 256);
    for (int n = 0; n < 2; ++n)
        for (int l = 0; l < 32; ++l) {
            const std::uint8_t* ql = q6.data() + 64 * n;
            const int is = 8 * n + l / 16;
            const int q1 = (ql[l] & 0xF) + (0 << 4) - 32, q2 = (ql[l + 32] & 0xF) + (1 << 4) - 32;
            const int q3 = (ql[l] >> 4) + (2 << 4) - 32, q4 = (ql[l + 32] >> 4) + (3 << 4) - 32;
            const auto s = [&](int k) { return float(std::int8_t(q6[192 + k])); };
            EXPECT_FLOAT_EQ(out[128 * n + l], 0.125f * s(is) * q1);
            EXPECT_FLOAT_EQ(out[128 * n + l + 32], 0.125f * s(is + 2) * q2);
            EXPECT_FLOAT_EQ(out[128 * n + l + 64], 0.125f * s(is + 4) * q3);
            EXPECT_FLOAT_EQ(out[128 * n + l + 96], 0.125f * s(is + 6) * q4);
        }

    // Q5_K: as Q4_K plus a fifth bit per element from qh (bit 2k / 2k+1 for chunk k).
    std::vector<std::uint8_t> q5(b.begin(), b.begin() + 16);
    for (int i = 0; i < 32; ++i) q5.push_back(std::uint8_t(i % 2 ? 0xAA : 0x55));
    q5.insert(q5.end(), b.begin() + 16, b.end());
    ggml::dequantize(ggml::Type::Q5_K, q5.data(), out, 256);
    for (int chunk = 0; chunk < 4; ++chunk)
        for (int l = 0; l < 32; ++l) {
            const int i = chunk * 32 + l;
            const std::uint8_t qh = l % 2 ? 0xAA : 0x55;
            const int lo = (i % 16) + ((qh >> (2 * chunk)) & 1) * 16;
            const int hi = ((i * 3) % 16) + ((qh >> (2 * chunk + 1)) & 1) * 16;
            EXPECT_FLOAT_EQ(out[chunk * 64 + l], 0.5f * sc[2 * chunk] * lo - 0.25f * mn[2 * chunk]);
            EXPECT_FLOAT_EQ(out[chunk * 64 + 32 + l], 0.5f * sc[2 * chunk + 1] * hi - 0.25f * mn[2 * chunk + 1]);
        }
}

TEST(Ggml, Q8_0EncodesWithinItsError) {
    std::mt19937 rng(3);
    std::normal_distribution<float> d;
    std::vector<float> x(256);
    for (auto& v : x) v = d(rng);
    std::vector<std::uint8_t> q(256 / 32 * 34);
    ggml::quantize_q8_0(x.data(), q.data(), x.size());
    std::vector<float> y(256);
    ggml::dequantize(ggml::Type::Q8_0, q.data(), y.data(), y.size());
    for (int b = 0; b < 8; ++b) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
        for (int i = 0; i < 32; ++i) EXPECT_LE(std::fabs(y[b * 32 + i] - x[b * 32 + i]), amax / 127 * 0.5f * 1.01f + 1e-6f);
    }
}

// The GGUF and the llama.c file of stories260K hold the same tensors.
TEST(Gguf, Stories260KMatchesTheLlama2cFile) {
    const std::string gguf = test::shared_data(kStoriesGguf);
    const std::string bin = test::shared_data("stories260K-llama2c/stories260K.bin");
    ANE_REQUIRE_SHARED(gguf);
    ANE_REQUIRE_SHARED(bin);
    EXPECT_EQ(detect_file_kind(gguf), FileKind::Gguf);
    const Checkpoint ck = read_gguf_model(gguf);
    const Weights ref = read_llama2c(bin);
    EXPECT_TRUE(ck.weights.config.tied);  // its output.weight is a copy of the embedding
    EXPECT_EQ(ck.weights.config.seq, 2048);
    EXPECT_TRUE(ck.weights.bit_equal(ref));
    EXPECT_FALSE(ck.tokenizer_gguf.empty());
    const GgufFile vocab(ck.tokenizer_gguf, "embedded");
    ASSERT_NE(vocab.find("tokenizer.ggml.tokens"), nullptr);
    EXPECT_EQ(vocab.find("tokenizer.ggml.tokens")->array.size(), 512u);
}

TEST(Gguf, ToBlztAndBackKeepsTensorsAndVocabulary) {
    const std::string gguf = test::shared_data(kStoriesGguf);
    ANE_REQUIRE_SHARED(gguf);
    test::TempDir dir;
    write_blzt(read_gguf_model(gguf), dir.path("s.blzt"));
    const Checkpoint blzt = read_blzt(dir.path("s.blzt"));
    const auto tok = gguf_tokenizer_metadata(GgufFile(blzt.tokenizer_gguf, "embedded"));
    write_gguf_model(blzt, tok, GgufExportType::F32, dir.path("s.gguf"));
    const Checkpoint back = read_gguf_model(dir.path("s.gguf"));
    EXPECT_TRUE(back.weights.bit_equal(blzt.weights));
    const GgufFile out(dir.path("s.gguf")), in(gguf);
    for (const char* key : {"llama.context_length", "llama.embedding_length", "llama.attention.head_count_kv",
                            "llama.rope.dimension_count", "tokenizer.ggml.bos_token_id"})
        EXPECT_EQ(out.find(key)->as_double(), in.find(key)->as_double()) << key;
    const auto& a = out.find("tokenizer.ggml.tokens")->array;
    const auto& b = in.find("tokenizer.ggml.tokens")->array;
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].s, b[i].s);
    EXPECT_EQ(out.find("general.architecture")->s, "llama");
    // Every F32 tensor of the round trip is byte-identical to the original's; the original's
    // output.weight, a copy of token_embd, is left out (llama.cpp ties it).
    for (const auto& t : in.tensors()) {
        const GgufTensorInfo* o = out.find_tensor(t.name == "output.weight" ? "token_embd.weight" : t.name);
        ASSERT_NE(o, nullptr) << t.name;
        ASSERT_EQ(o->bytes, t.bytes) << t.name;
        EXPECT_EQ(std::memcmp(out.tensor_data(*o), in.tensor_data(t), t.bytes), 0) << t.name;
    }
    EXPECT_EQ(out.tensors().size() + 1, in.tensors().size());
}

TEST(Gguf, Stories260KLogitsMatchLlama2c) {
    const std::string gguf = test::shared_data(kStoriesGguf);
    const std::string ref_path = test::shared_data("reference-outputs/stories260K_greedy_n200.json");
    ANE_REQUIRE_SHARED(gguf);
    ANE_REQUIRE_SHARED(ref_path);
    const Checkpoint ck = read_gguf_model(gguf);
    const auto ref = nlohmann::json::parse(read_text_file(ref_path));
    const auto gen = ref["generated_token_ids"].get<std::vector<int>>();
    const auto got = logits_of(ck.weights, {1, gen[0], gen[1]});
    for (int pos = 0; pos < 3; ++pos) {
        const auto want = ref["logits_by_position"][std::to_string(pos)]["logits"].get<std::vector<double>>();
        for (int v = 0; v < 512; ++v) ASSERT_NEAR(got[std::size_t(pos) * 512 + v], want[v], 1e-4) << pos << " " << v;
    }
}

TEST(Gguf, ExportTypesAndTheResidualScaleKeepTheModel) {
    test::TempDir dir;
    Checkpoint ck;
    ck.weights = test::random_weights(test::tiny_config(false), 4);
    ck.weights.config.dim = 32;  // Q8_0 needs rows that are whole blocks of 32
    ck.weights.config.head_dim = 8;
    ck.weights = test::random_weights(ck.weights.config, 4);
    ck.weights.for_each([](const std::string&, Tensor& t) {
        for (auto& x : t.span()) x *= 0.2f;
    });
    for (auto& l : ck.weights.layers) l.rms_att.fill(1.0f), l.rms_ffn.fill(1.0f);
    ck.weights.rms_final.fill(1.0f);
    const std::vector<std::int32_t> tokens = {1, 5, 2, 7};
    const auto want = logits_of(ck.weights, tokens);  // α = 0.5 here
    double scale = 0;
    for (float z : want) scale = std::max(scale, double(std::fabs(z)));
    ASSERT_GT(scale, 0.1);
    // Relative to the largest logit: exact up to float rounding, then fp16's and Q8_0's precision.
    for (auto [type, tol] : {std::pair{GgufExportType::F32, 1e-5}, {GgufExportType::F16, 3e-3}, {GgufExportType::Q8_0, 8e-2}}) {
        write_gguf_model(ck, {}, type, dir.path("m.gguf"));
        const Checkpoint back = read_gguf_model(dir.path("m.gguf"));
        EXPECT_EQ(back.weights.config.residual_scale, 1.0);
        EXPECT_FALSE(back.weights.config.tied);
        const auto got = logits_of(back.weights, tokens);
        double worst = 0;
        for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
        EXPECT_LT(worst / scale, tol) << "type " << int(type);
    }
}

TEST(Gguf, OtherSharedFilesParse) {
    const std::string tiny = test::shared_data("llama-2-tiny-random-gguf/llama-2-tiny-random.gguf");
    const std::string vocab = test::shared_data("llamacpp-vocab-tests/ggml-vocab-llama-spm.gguf");
    const std::string gpt2 = test::shared_data("llamacpp-vocab-tests/ggml-vocab-gpt-2.gguf");
    ANE_REQUIRE_SHARED(tiny);
    const Checkpoint ck = read_gguf_model(tiny);  // F16 tensors, untied output
    EXPECT_EQ(ck.weights.config.vocab, 32000);
    EXPECT_EQ(ck.weights.config.dim, 8);
    EXPECT_FALSE(ck.weights.config.tied);
    for (const auto& path : {vocab, gpt2}) {
        const GgufFile f(path);
        EXPECT_TRUE(f.tensors().empty());
        EXPECT_NE(f.find("tokenizer.ggml.tokens"), nullptr);
        try {
            read_gguf_model(path);
            ADD_FAILURE() << path;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("no tensors"), std::string::npos) << e.what();
        }
    }
}

TEST(Gguf, TruncatedAndCorruptFilesAreRejectedCleanly) {
    const std::string gguf = test::shared_data(kStoriesGguf);
    ANE_REQUIRE_SHARED(gguf);
    test::TempDir dir;
    const auto bytes = test::read_bytes(gguf);
    const GgufFile good(gguf);
    // Cut inside the header and metadata at every byte, and through the data at intervals.
    std::vector<std::size_t> cuts;
    for (std::size_t c = 0; c < 20000; ++c) cuts.push_back(c);
    for (std::size_t c = 20000; c < bytes.size(); c += 4099) cuts.push_back(c);
    for (std::size_t cut : cuts) {
        const std::vector<std::uint8_t> part(bytes.begin(), bytes.begin() + std::ptrdiff_t(cut));
        try {
            GgufFile f(part, "cut");
            read_gguf_model(dir.path("none"));  // never reached for a bad cut
        } catch (const Error&) {
        }
    }
    for (std::size_t cut : {std::size_t(100), std::size_t(5000), bytes.size() / 2, bytes.size() - 1}) {
        test::write_bytes(dir.path("cut.gguf"), std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(cut)));
        EXPECT_THROW(read_gguf_model(dir.path("cut.gguf")), Error) << cut;
    }
    std::mt19937 rng(5);
    for (int trial = 0; trial < 300; ++trial) {
        auto flipped = bytes;
        const std::size_t at = rng() % 20000;
        flipped[at] ^= std::uint8_t(1u << (rng() % 8));
        try {
            GgufFile f(flipped, "flipped");
            for (const auto& t : f.tensors())
                if (t.bytes > 0) f.read_tensor(t);
        } catch (const Error&) {
        }
    }
}

// Fuzzing found: a vocabulary shorter than the embedding let ane-generate read past it. Every
// reader now refuses the mismatch, and no writer makes such a file.
TEST(Gguf, AVocabularyThatDoesNotMatchTheEmbeddingIsRefused) {
    const std::string tok512 = test::shared_data("stories260K-llama2c/tok512.bin");
    ANE_REQUIRE_SHARED(tok512);
    test::TempDir dir;
    ModelConfig c = test::tiny_config();
    c.vocab = 600;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 1);
    const auto kv = gguf_metadata_from_tokenizer(*load_tokenizer(tok512));
    EXPECT_THROW(write_gguf_model(ck, kv, GgufExportType::F32, dir.path("bad.gguf")), Error);
    // The same file made by hand: the GGUF writer with the check bypassed through a 512-row
    // model whose embedding then grows.
    c.vocab = 512;
    ck.weights = test::random_weights(c, 1);
    write_gguf_model(ck, kv, GgufExportType::F32, dir.path("ok.gguf"));
    EXPECT_NO_THROW(read_gguf_model(dir.path("ok.gguf")));
    // A checkpoint whose embedded vocabulary is shorter than its rows.
    c.vocab = 600;
    Checkpoint blzt;
    blzt.weights = test::random_weights(c, 2);
    blzt.tokenizer_gguf = encode_vocab_only_gguf(kv);
    write_blzt(blzt, dir.path("bad.bin"));
    try {
        read_blzt(dir.path("bad.bin"));
        FAIL() << "the embedded vocabulary of 512 tokens was taken for 600 rows";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("512 tokens but the model has 600"), std::string::npos) << e.what();
    }
}

// llama.cpp puts a space before the text unless tokenizer.ggml.add_space_prefix says not to:
// parameter-golf's SentencePiece models have no dummy prefix, so the key must be written, and
// the GGUF's vocabulary then tokenizes as SentencePiece does.
TEST(Gguf, ExportWritesTheSpacePrefixFlagOfTheTokenizer) {
    const std::string fineweb = test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model");
    const std::string llama = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    ANE_REQUIRE_SHARED(fineweb);
    ANE_REQUIRE_SHARED(llama);
    test::TempDir dir;
    ModelConfig c = test::tiny_config();
    c.vocab = 1024;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 3);
    const auto sp = load_tokenizer(fineweb);
    EXPECT_FALSE(sp->adds_space_prefix());
    EXPECT_TRUE(load_tokenizer(llama)->adds_space_prefix());
    write_gguf_model(ck, gguf_metadata_from_tokenizer(*sp), GgufExportType::F32, dir.path("m.gguf"));
    const GgufFile f(dir.path("m.gguf"));
    const GgufValue* flag = f.find("tokenizer.ggml.add_space_prefix");
    ASSERT_NE(flag, nullptr);
    EXPECT_EQ(flag->u, 0u);
    const auto from_gguf = tokenizer_from_gguf(f);
    EXPECT_FALSE(from_gguf->adds_space_prefix());
    for (const char* text : {"Once upon a time", "hello world", "It was 42 degrees.", "the end."})
        EXPECT_EQ(from_gguf->encode(text), sp->encode(text)) << text;
}
