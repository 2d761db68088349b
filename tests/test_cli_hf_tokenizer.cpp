// A Hugging Face tokenizer.json through the tools: a corpus tokenized with Qwen3's vocabulary
// (151,669 ids: llm.c's uint32 shard), a model trained on it, evaluated in bits per byte and
// sampled from, the text decoded with the same tokenizer; then the tokenizer carried by the
// model through HF import, every tool, HF export and GGUF export.
#include <gtest/gtest.h>

#include <cmath>

#include "ane/token_file.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

TEST(CliHfTokenizer, Qwen3VocabularyFromCorpusToGeneratedText) {
    const std::string tok = test::shared_data("tokenizer-qwen3/tokenizer.json");
    const std::string text = test::shared_data("corpus-tinystories-excerpt/tinystories_train_head.txt");
    ANE_REQUIRE_SHARED(tok);
    ANE_REQUIRE_SHARED(text);
    test::TempDir dir;
    auto bytes = test::read_bytes(text);
    bytes.resize(std::min<std::size_t>(bytes.size(), 30000));
    test::write_bytes(dir.path("t.txt"), bytes);
    const std::string convert = std::string(ANE_CONVERT_BIN) + " tokens -t " + tok + " " + dir.path("t.txt");

    // uint16 formats cannot hold its ids: refused before any work, nothing written.
    auto r = test::run(convert + " -o " + dir.path("raw.bin") + " --format raw");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("use --format shard32"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.path("raw.bin")));

    r = test::run(convert + " -o " + dir.path("q.bin") + " --val-fraction 0.1");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("(shard32)"), std::string::npos) << r.out;
    // Bits per byte counts what each token decodes to: every byte of the text, once.
    EXPECT_NE(r.out.find("30000 bytes in 1 file(s)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(30000 bytes by the bits-per-byte rule)"), std::string::npos) << r.out;
    const TokenFile q(dir.path("q.bin"));
    EXPECT_EQ(q.format(), TokenFormat::Shard32);
    EXPECT_GT(q.max_id(), 65535u);

    const std::string json =
        R"({"dim": 32, "hidden": 64, "heads": 2, "kv_heads": 1, "head_dim": 16, "seq": 32, "layers": 1, "vocab": 151936, "qk_norm": true})";
    test::write_bytes(dir.path("m.json"), std::vector<std::uint8_t>(json.begin(), json.end()));
    r = test::run(std::string(ANE_TRAIN_BIN) + " --config " + dir.path("m.json") + " --data " + dir.path("q.bin") +
                  " --val " + dir.path("q.val.bin") + " -o " + dir.path("m.bin") +
                  " --steps 30 --batch 4 --lr 3e-3 --threads 2 -q -f");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Learned: below the loss of a uniform guess over the ids present in the data.
    EXPECT_LT(test::report_value(r.out, "val_loss"), std::log(test::report_value(r.out, "compact_vocab")));

    r = test::run(std::string(ANE_EVAL_BIN) + " " + dir.path("m.bin") + " --data " + dir.path("q.val.bin") + " -t " +
                  tok + " --threads 2 -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GT(test::report_value(r.out, "val_bpb"), 0.5);
    EXPECT_LT(test::report_value(r.out, "val_bpb"), 6.0);

    r = test::run(std::string(ANE_GENERATE_BIN) + " " + dir.path("m.bin") + " -t " + tok +
                  " --prompt 'Once upon a time' -n 8 --temperature 0 --threads 2 -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
    EXPECT_GT(r.out.size(), std::string("Once upon a time").size());
    const std::string generated = r.out;

    // The tokenizer travels with the model: an HF folder with tokenizer.json and
    // tokenizer_config.json imports with it, and every tool then needs no --tokenizer.
    const std::string convert_bin = std::string(ANE_CONVERT_BIN) + " ";
    ASSERT_EQ(test::run(convert_bin + "export-hf " + dir.path("m.bin") + " -o " + dir.path("hf") + " -q").exit_code, 0);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
        std::filesystem::copy_file(test::shared_data(std::string("tokenizer-qwen3/") + f), dir.path(std::string("hf/") + f));
    r = test::run(convert_bin + "hf " + dir.path("hf") + " -o " + dir.path("imported.bin") + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string gen_args = " --prompt 'Once upon a time' -n 8 --temperature 0 --threads 2 -q";
    r = test::run(std::string(ANE_GENERATE_BIN) + " " + dir.path("imported.bin") + gen_args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, generated);
    r = test::run(std::string(ANE_EVAL_BIN) + " " + dir.path("imported.bin") + " --data " + dir.path("q.val.bin") +
                  " --threads 2 -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_GT(test::report_value(r.out, "val_bpb"), 0.5);
    r = test::run(convert_bin + "tokens -t " + dir.path("imported.bin") + " -o " + dir.path("again.bin") +
                  " --val-fraction 0.1 -q " + dir.path("t.txt"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(test::read_bytes(dir.path("again.bin")) == test::read_bytes(dir.path("q.bin")));
    // --chat: the prompt as a user turn of Qwen3's chat template (from the tokenizer_config.json
    // the model carries), so the reply equals a plain prompt of the rendered conversation.
    r = test::run(std::string(ANE_GENERATE_BIN) + " " + dir.path("imported.bin") + " --chat" + gen_args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string rendered = "<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n";
    const auto plain = test::run(std::string(ANE_GENERATE_BIN) + " " + dir.path("imported.bin") + " --prompt '" +
                                 rendered + "' -n 8 --temperature 0 --threads 2 -q");
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_EQ(rendered + r.out, plain.out);
    std::filesystem::create_directory(dir.path("alone"));
    std::filesystem::copy_file(tok, dir.path("alone/tokenizer.json"));
    r = test::run(std::string(ANE_GENERATE_BIN) + " " + dir.path("m.bin") + " -t " + dir.path("alone/tokenizer.json") +
                  " --chat" + gen_args);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("no tokenizer_config.json beside"), std::string::npos) << r.err;
    // ... goes back out with export-hf, and into GGUF as a gpt2 vocabulary padded to the rows.
    ASSERT_EQ(test::run(convert_bin + "export-hf " + dir.path("imported.bin") + " -o " + dir.path("hf2") + " -q").exit_code, 0);
    EXPECT_TRUE(test::read_bytes(dir.path("hf2/tokenizer.json")) == test::read_bytes(tok));
    ASSERT_EQ(test::run(convert_bin + "export-gguf " + dir.path("imported.bin") + " -o " + dir.path("m.gguf") + " -q").exit_code, 0);
    r = test::run(std::string(ANE_GENERATE_BIN) + " " + dir.path("m.gguf") + gen_args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, generated);
}

}  // namespace
}  // namespace ane
