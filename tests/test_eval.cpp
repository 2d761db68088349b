#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "ane/error.hpp"
#include "ane/eval.hpp"
#include "ane/formats/artifact.hpp"
#include "ane/model/kernels.hpp"
#include "ane/model_file.hpp"
#include "ane/token_file.hpp"
#include "ane/train/trainer.hpp"
#include "ane/file_io.hpp"
#include "ane/tokenizer.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {


// A small model trained on the phrase stream.
Checkpoint trained_model(const test::TempDir& dir) {
    ModelConfig c = test::tiny_config(true);
    c.vocab = 16;
    c.seq = 16;
    save_config_json(c, dir.path("m.json"));
    write_token_file(dir.path("train.bin"), test::phrase_tokens(6000, 3), TokenFormat::Raw);
    TrainOptions o;
    o.config_path = dir.path("m.json");
    o.data = dir.path("train.bin");
    o.output = dir.path("m.bin");
    o.steps = 80;
    o.batch = 8;
    o.lr = 2e-2f;
    o.warmup = 5;
    o.eval_every = 0;
    o.full_vocab = true;
    o.threads = 1;
    const std::atomic<bool> no_stop{false};
    train(o, {}, no_stop);
    return read_blzt(o.output);
}

EvalResult run_eval(const Weights& w, std::span<const std::uint16_t> tokens, int seq, int stride, int batch = 4) {
    // Results compared bit for bit across devices: one matrix-product library.
    auto dev = make_device("cpu", device_options(1, "full", "openblas"));
    ModelConfig c = w.config;
    Transformer model(w, *dev, batch, VocabMap::identity(c.vocab));
    return evaluate_stream(model, tokens, plan_eval_windows(tokens.size(), seq, stride), nullptr);
}

}  // namespace

TEST(Eval, BitsPerByteFormula) {
    EvalResult r;
    r.tokens = 4;
    r.loss_sum = 4 * 2 * std::log(2.0);  // 2 bits per token
    r.bytes = 8;
    EXPECT_NEAR(r.val_loss(), 2 * std::log(2.0), 1e-12);
    EXPECT_NEAR(r.val_bpb(), 1.0, 1e-12);  // 8 bits over 8 bytes
}

// A model whose logits are all zero scores every token at ln V; with the Llama 2 vocabulary
// "Hello world" after BOS is "▁Hello" (5 bytes: the space follows a boundary) and "▁world"
// (6 bytes).
TEST(Eval, HandWorkedBitsPerByte) {
    const std::string model = test::shared_data("tokenizer-llama2-sentencepiece/tokenizer.model");
    ANE_REQUIRE_SHARED(model);
    const auto tok = load_tokenizer(model);
    const auto ids = tok->encode("Hello world");
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(tok->piece(ids[0]), "\xE2\x96\x81Hello");
    EXPECT_EQ(tok->piece(ids[1]), "\xE2\x96\x81world");
    ModelConfig c = test::tiny_config(true);
    c.vocab = 32000;
    const Weights zero = Weights::zeros(c);
    const std::vector<std::uint16_t> stream = {1, std::uint16_t(ids[0]), std::uint16_t(ids[1])};
    const ByteCounter bytes(*tok, c.vocab);
    auto dev = make_device("cpu", 1);
    Transformer m(zero, *dev, 1, VocabMap::identity(c.vocab));
    const EvalResult r = evaluate_stream(m, stream, plan_eval_windows(3, 2, 2), &bytes);
    EXPECT_EQ(r.tokens, 2);
    EXPECT_EQ(r.bytes, 11);
    EXPECT_NEAR(r.val_loss(), std::log(32000.0), 1e-5);
    EXPECT_NEAR(r.val_bpb(), std::log2(32000.0) * 2.0 / 11.0, 1e-5);
}

TEST(Eval, EveryTokenIsScoredExactlyOnce) {
    const std::size_t n = 1000;
    const int seq = 64;
    for (int stride : {1, 7, 64}) {
        const auto windows = plan_eval_windows(n, seq, stride);
        std::vector<int> count(n, 0);
        for (std::size_t k = 0; k < windows.size(); ++k) {
            const auto& w = windows[k];
            ASSERT_LE(w.length, seq);
            ASSERT_LE(w.start + w.length, n - 1);
            for (int pos = w.score_from; pos < w.length; ++pos) {
                ++count[w.start + pos + 1];
                if (k > 0) {
                    EXPECT_GE(pos + 1, seq - stride + 1) << "context of target " << w.start + pos + 1;
                }
            }
            if (k > 0 && w.length == seq) {
                EXPECT_EQ(w.length - w.score_from, stride);
            }
        }
        EXPECT_EQ(count[0], 0);
        for (std::size_t i = 1; i < n; ++i) ASSERT_EQ(count[i], 1) << "stride " << stride << " target " << i;
    }
    EXPECT_THROW(plan_eval_windows(64, 64, 8), Error);  // shorter than one window
    EXPECT_THROW(plan_eval_windows(1000, 64, 65), Error);
    EXPECT_THROW(plan_eval_windows(1000, 64, 0), Error);
}

TEST(Eval, PlainEvaluationEqualsADirectLoop) {
    test::TempDir dir;
    const Checkpoint ck = trained_model(dir);
    const auto val = test::phrase_tokens(700, 9);
    const int seq = 16;
    // The direct loop: consecutive windows, every position scored.
    double total = 0;
    std::int64_t count = 0;
    auto dev = make_device("cpu", 1);
    Transformer m(ck.weights, *dev, 1, VocabMap::identity(ck.weights.config.vocab));
    for (std::size_t s = 0; s + 1 < val.size(); s += seq) {
        const int L = int(std::min<std::size_t>(seq, val.size() - 1 - s));
        std::vector<std::int32_t> in(val.begin() + s, val.begin() + s + L), tg(val.begin() + s + 1, val.begin() + s + L + 1);
        m.forward(in.data(), 1, L);
        std::vector<double> rows(L);
        kernels::cross_entropy_rows(m.logits(), tg.data(), L, ck.weights.config.vocab, rows.data());
        for (double x : rows) total += x;
        count += L;
    }
    const EvalResult plain = run_eval(ck.weights, val, seq, seq);
    EXPECT_EQ(plain.tokens, count);
    EXPECT_NEAR(plain.val_loss(), total / double(count), 1e-6);
    EXPECT_LT(plain.val_loss(), std::log(16.0) - 0.5);  // the model learned the phrases
    EXPECT_EQ(run_eval(ck.weights, val, seq, 1).tokens, count);
}

// On real text, more context helps: a model trained on TinyStories scores better with a
// sliding window than with consecutive windows.
TEST(Eval, SlidingWindowIsNoWorseOnText) {
    for (const auto& path : test::text_model_inputs()) ANE_REQUIRE_SHARED(path);
    test::TempDir dir;
    ModelConfig c;
    c.dim = 64, c.hidden = 128, c.heads = 4, c.kv_heads = 2, c.head_dim = 16, c.seq = 64, c.layers = 2;
    const test::TextModel tm = test::train_text_model(dir, c, 300, 5e-3f, 1);
    const Checkpoint& ck = tm.ck;
    const auto& ids = tm.ids;
    const std::span<const std::uint16_t> val(ids.data() + ids.size() * 9 / 10, ids.size() / 10);
    const EvalResult plain = run_eval(ck.weights, val, 64, 64, 8);
    const EvalResult sliding = run_eval(ck.weights, val, 64, 16, 8);
    EXPECT_EQ(plain.tokens, sliding.tokens);
    EXPECT_LT(plain.val_loss(), 5.0);  // trained well past the unigram level
    EXPECT_LE(sliding.val_loss(), plain.val_loss());
}

TEST(Eval, ArtifactScoresLikeItsUnpackedCheckpoint) {
    test::TempDir dir;
    Checkpoint ck = trained_model(dir);
    write_artifact(ck, dir.path("m.int8.zlib"), ArtifactCodec::Zlib, 9);
    write_blzt(read_artifact(dir.path("m.int8.zlib")), dir.path("unpacked.bin"));
    const auto val = test::phrase_tokens(500, 4);
    const EvalResult a = run_eval(load_model(dir.path("m.int8.zlib")).weights, val, 16, 4);
    const EvalResult b = run_eval(load_model(dir.path("unpacked.bin")).weights, val, 16, 4);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.loss_sum, b.loss_sum);
}

// The KV-cache decoder (what encoded weights run on) scores a stream as the batched forward
// does: full and compact softmax, plain and sliding windows, one or several windows at once.
TEST(Eval, TheDecoderScoresAsTheBatchedForward) {
    test::TempDir dir;
    const Checkpoint ck = trained_model(dir);
    const auto val = test::phrase_tokens(300, 4);
    auto dev = make_device("cpu", 2);
    for (bool compact : {false, true})
        for (int stride : {16, 5}) {
            const VocabMap map = compact ? VocabMap::build(val, ck.weights.config.vocab)
                                         : VocabMap::identity(ck.weights.config.vocab);
            const auto windows = plan_eval_windows(val.size(), 16, stride);
            Transformer model(ck.weights, *dev, 4, map);
            const EvalResult batched = evaluate_stream(model, val, windows, nullptr);
            const InferenceWeights weights = InferenceWeights::view(ck.weights);
            for (int sequences : {1, 4}) {  // one window per product, or four
                Decoder decoder(weights, *dev, 16, 16 * sequences, sequences);
                const EvalResult decoded = evaluate_stream(decoder, map, val, windows, nullptr);
                EXPECT_EQ(decoded.tokens, batched.tokens);
                EXPECT_NEAR(decoded.val_loss(), batched.val_loss(), 1e-5) << compact << " " << stride << " " << sequences;
            }
            if (compact) {
                EXPECT_LT(map.compact_vocab(), ck.weights.config.vocab);
            }
        }
}
