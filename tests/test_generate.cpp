#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <nlohmann/json.hpp>

#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/generate.hpp"
#include "ane/llama2c.hpp"
#include "ane/model_file.hpp"
#include "ane/sampler.hpp"
#include "ane/score_tokenizer.hpp"
#include "test_util.hpp"

using namespace ane;
using nlohmann::json;

namespace {

std::vector<std::string> split_cases(const std::string& text) {
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> out;
    std::size_t at = 0;
    while (true) {
        const auto next = text.find(sep, at);
        if (next == std::string::npos) break;
        out.push_back(text.substr(at, next - at));
        at = next + sep.size();
    }
    return out;
}

std::string generate_text(const Checkpoint& ck, const Tokenizer& tok, const SamplerConfig& sc, int n,
                          std::vector<std::int32_t>* ids_out) {
    auto dev = make_device("cpu", 1);
    Decoder decoder(ck.weights, *dev, 512);
    Sampler sampler(sc, ck.weights.config.vocab);
    std::string text;
    int prev = tok.bos_id();
    const GenerateResult r = generate(decoder, sampler, {tok.bos_id()}, n, {}, [&](int id) {
        text += tok.token_text(prev, id);
        prev = id;
    });
    if (ids_out) *ids_out = r.generated;
    return text;
}

}  // namespace

// llama.cpp's own tokenizer test vectors for its SentencePiece (llama) vocabulary.
TEST(Generate, GgufVocabularyReproducesLlamaCppTokenizerTests) {
    const std::string base = test::shared_data("llamacpp-vocab-tests/ggml-vocab-llama-spm.gguf");
    ANE_REQUIRE_SHARED(base);
    const auto tok = tokenizer_from_gguf(GgufFile(base));
    const auto inputs = split_cases(read_text_file(base + ".inp"));
    std::vector<std::vector<int>> outputs;
    {
        std::istringstream in(read_text_file(base + ".out"));
        for (std::string line; std::getline(in, line);) {
            std::istringstream ls(line);
            std::vector<int> ids;
            for (int id; ls >> id;) ids.push_back(id);
            outputs.push_back(ids);
        }
    }
    ASSERT_EQ(inputs.size(), outputs.size());
    int exact = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const auto ids = tok->encode(inputs[i]);
        EXPECT_EQ(ids, outputs[i]) << "case " << i << ": '" << inputs[i] << "'";
        exact += ids == outputs[i];
        // And it decodes back to the text (bytes outside the vocabulary go through byte tokens).
        EXPECT_EQ(tok->decode(ids), inputs[i]) << "case " << i;
    }
    EXPECT_EQ(exact, int(inputs.size()));
}

// Every kind of vocabulary gives the text back, characters outside it included (bytes).
TEST(Generate, TokenizersRoundTripText) {
    const std::string tok512 = test::shared_data("stories260K-llama2c/tok512.bin");
    const std::string sp = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    ANE_REQUIRE_SHARED(tok512);
    ANE_REQUIRE_SHARED(sp);
    const std::vector<std::string> texts = {"Once upon a time, Lily said \"hi\".", "naïve café 東京 🙂",
                                            "tabs\tand\nnewlines", "x"};
    const auto llama2c = load_llama2c_tokenizer(tok512, 512);
    const auto spm = load_tokenizer(sp);
    for (const auto& t : texts) {
        EXPECT_EQ(llama2c->decode(llama2c->encode(t)), t) << t;
        EXPECT_EQ(spm->decode(spm->encode(t)), t) << t;
        // Streaming a token at a time gives the same text as decoding them together.
        const auto ids = llama2c->encode(t);
        std::string streamed;
        int prev = llama2c->bos_id();
        for (int id : ids) {
            streamed += llama2c->token_text(prev, id);
            prev = id;
        }
        EXPECT_EQ(streamed, t);
    }
    EXPECT_EQ(llama2c->encode("Once upon a time"), (std::vector<int>{403, 407, 261, 378}));  // run.c's ids
}

TEST(Generate, GreedyStories260KMatchesLlama2c) {
    const std::string ref_path = test::shared_data("reference-outputs/stories260K_greedy_n200.json");
    const std::string bin = test::shared_data("stories260K-llama2c/stories260K.bin");
    const std::string tok512 = test::shared_data("stories260K-llama2c/tok512.bin");
    const std::string gguf = test::shared_data("stories260K-gguf/stories260K.gguf");
    ANE_REQUIRE_SHARED(ref_path);
    ANE_REQUIRE_SHARED(bin);
    const json ref = json::parse(read_text_file(ref_path));
    const auto want = ref["generated_token_ids"].get<std::vector<std::int32_t>>();
    SamplerConfig greedy;
    greedy.temperature = 0;
    // llama2.c model with its tokenizer.bin
    Checkpoint a;
    a.weights = read_llama2c(bin);
    const auto tok_a = load_llama2c_tokenizer(tok512, 512);
    std::vector<std::int32_t> ids;
    const std::string text_a = generate_text(a, *tok_a, greedy, int(want.size()), &ids);
    EXPECT_EQ(ids, want);
    std::string stdout_text = ref["stdout_text"].get<std::string>();
    if (!stdout_text.empty() && stdout_text.back() == '\n') stdout_text.pop_back();  // run.c's final newline
    EXPECT_EQ(text_a.substr(0, stdout_text.size()), stdout_text);
    // The GGUF with its embedded vocabulary.
    const Checkpoint b = read_gguf_model(gguf);
    const auto tok_b = tokenizer_from_gguf(GgufFile(b.tokenizer_gguf, "embedded"));
    const std::string text_b = generate_text(b, *tok_b, greedy, int(want.size()), &ids);
    EXPECT_EQ(ids, want);
    EXPECT_EQ(text_b, text_a);
}

TEST(Generate, SeededSamplingMatchesLlama2c) {
    const std::string ref_path = test::shared_data("reference-outputs/stories260K_sample_t1.0_p0.9_seed133742.json");
    const std::string bin = test::shared_data("stories260K-llama2c/stories260K.bin");
    ANE_REQUIRE_SHARED(ref_path);
    const json ref = json::parse(read_text_file(ref_path));
    const auto want = ref["generated_token_ids"].get<std::vector<std::int32_t>>();
    Checkpoint a;
    a.weights = read_llama2c(bin);
    const auto tok = load_llama2c_tokenizer(test::shared_data("stories260K-llama2c/tok512.bin"), 512);
    SamplerConfig sc;
    sc.temperature = 1.0f;
    sc.top_p = 0.9f;
    sc.top_k = 0;
    sc.seed = 133742;
    std::vector<std::int32_t> ids;
    generate_text(a, *tok, sc, int(want.size()), &ids);
    std::size_t same = 0;
    while (same < ids.size() && same < want.size() && ids[same] == want[same]) ++same;
    EXPECT_EQ(same, want.size()) << "first difference at token " << same;
    // The same seed gives the same text.
    std::vector<std::int32_t> again;
    generate_text(a, *tok, sc, 50, &again);
    EXPECT_TRUE(std::equal(again.begin(), again.end(), ids.begin()));
}

// Logits in no order, with ties and a NaN: top-k keeps the k largest (the lower id of equals)
// with the softmax renormalised over them, as sorting the whole distribution in double would;
// greedy takes the first of equal maxima.
TEST(Generate, TopKAndGreedyChooseFromUnorderedLogits) {
    const int V = 3000;
    std::vector<float> logits(V);
    std::uint64_t state = 12345;
    for (auto& z : logits) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        z = float(state >> 40) / float(1 << 24) * 8.0f - 4.0f;
    }
    logits[2900] = logits[17] = 9.0f;  // two equal maxima
    logits[1500] = logits[40] = 8.5f;  // equal, at the edge of the top 4
    logits[5] = std::nanf("");
    SamplerConfig greedy;
    greedy.temperature = 0;
    EXPECT_EQ(Sampler(greedy, V).sample(logits.data(), {}), 17);
    greedy.repeat_penalty = 2.0f;
    const std::vector<std::int32_t> history = {17};
    EXPECT_EQ(Sampler(greedy, V).sample(logits.data(), history), 2900);

    for (int k : {1, 3, 4, 40}) {
        SamplerConfig sc;
        sc.temperature = 0.7f;
        sc.top_k = k;
        sc.top_p = 1.0f;
        std::vector<int> order;
        for (int i = 0; i < V; ++i)
            if (!std::isnan(logits[i])) order.push_back(i);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
        order.resize(std::size_t(k));
        std::sort(order.begin(), order.end());
        double total = 0;
        for (int i : order) total += std::exp((double(logits[i]) - 9.0) / 0.7);
        const auto got = Sampler(sc, V).distribution(logits.data(), {});
        ASSERT_EQ(got.size(), order.size()) << "k " << k;
        for (std::size_t j = 0; j < got.size(); ++j) {
            EXPECT_EQ(got[j].first, order[j]) << "k " << k;
            EXPECT_NEAR(got[j].second, std::exp((double(logits[order[j]]) - 9.0) / 0.7) / total, 1e-6) << "k " << k;
        }
    }
}

TEST(Generate, SamplingDistributionsMatchTheirDefinitions) {
    const std::vector<float> logits = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f};
    const int V = int(logits.size());
    auto softmax = [&](float t) {
        std::vector<double> p(V);
        double s = 0;
        for (int i = 0; i < V; ++i) s += (p[i] = std::exp(logits[i] / t));
        for (auto& x : p) x /= s;
        return p;
    };
    struct Case {
        float temperature, top_p;
        int top_k;
    } cases[] = {{1.0f, 1.0f, 0}, {0.5f, 1.0f, 0}, {1.0f, 1.0f, 3}, {1.0f, 0.7f, 0}};
    for (const auto& cs : cases) {
        SamplerConfig sc;
        sc.temperature = cs.temperature;
        sc.top_p = cs.top_p;
        sc.top_k = cs.top_k;
        sc.seed = 7;
        // The expected distribution from the definitions.
        std::vector<double> want = softmax(cs.temperature);
        if (cs.top_k > 0) {
            for (int i = cs.top_k; i < V; ++i) want[i] = 0;  // logits are sorted: the first k are the top k
        }
        if (cs.top_p < 1.0f) {
            double cum = 0;
            int keep = 0;
            while (keep < V && cum <= cs.top_p) cum += want[keep++];
            for (int i = keep; i < V; ++i) want[i] = 0;
        }
        double total = 0;
        for (double w : want) total += w;
        for (auto& w : want) w /= total;
        Sampler s(sc, V);
        std::vector<int> counts(V, 0);
        const int draws = 200000;
        for (int i = 0; i < draws; ++i) ++counts[s.sample(logits.data(), {})];
        for (int i = 0; i < V; ++i)
            EXPECT_NEAR(counts[i] / double(draws), want[i], 0.005) << "t " << cs.temperature << " k " << cs.top_k
                                                                    << " p " << cs.top_p << " id " << i;
    }
    SamplerConfig greedy;
    greedy.temperature = 0;
    EXPECT_EQ(Sampler(greedy, V).sample(logits.data(), {}), 0);
    SamplerConfig penal;
    penal.temperature = 0;
    penal.repeat_penalty = 10.0f;
    const std::vector<std::int32_t> history = {0};
    EXPECT_EQ(Sampler(penal, V).sample(logits.data(), history), 1);
}
