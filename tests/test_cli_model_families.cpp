// Qwen2- and Qwen3-family models through the tools: trained from a config, sampled, carried
// to Hugging Face and GGUF (qwen2/qwen3 architectures) and back to the same text, evaluated,
// and tuned with MeZO (full and LoRA) and backprop LoRA.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/model_file.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

struct FamilyRun {
    test::TempDir dir;
    std::string tok, data, val, model;

    // A corpus in the 1024-token SentencePiece vocabulary and a model of the family trained
    // on it for a few steps.
    void prepare(const std::string& family_json) {
        tok = test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model");
        const std::string text = test::shared_data("corpus-tinystories-excerpt/tinystories_train_head.txt");
        auto bytes = test::read_bytes(text);
        bytes.resize(std::min<std::size_t>(bytes.size(), 40000));
        test::write_bytes(dir.path("t.txt"), bytes);
        data = dir.path("d.bin");
        val = dir.path("d.val.bin");
        auto r = test::run(std::string(ANE_CONVERT_BIN) + " tokens -t " + tok + " -o " + data +
                           " --val-fraction 0.1 -q " + dir.path("t.txt"));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const std::string json = R"({"dim": 32, "hidden": 64, "heads": 4, "kv_heads": 2, "head_dim": 8, "seq": 32,
            "layers": 2, "vocab": 1024, "rope_theta": 1000000, "norm_eps": 1e-6, )" + family_json + "}";
        std::ofstream(dir.path("m.json")) << json;
        model = dir.path("m.bin");
        r = test::run(std::string(ANE_TRAIN_BIN) + " --config " + dir.path("m.json") + " --data " + data + " --val " +
                      val + " -o " + model + " --steps 40 --batch 4 --lr 3e-3 --threads 2 -q -f");
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_LT(test::report_value(r.out, "val_loss"), std::log(1024.0));
    }
    test::RunResult generate(const std::string& file) const {
        return test::run(std::string(ANE_GENERATE_BIN) + " " + file + " -t " + tok +
                         " --prompt 'Once upon a time' -n 12 --temperature 0 --threads 2 -q");
    }
    double val_loss(const std::string& file) const {
        const auto r = test::run(std::string(ANE_EVAL_BIN) + " " + file + " --data " + val + " -t " + tok +
                                 " --threads 2 -q");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return test::report_value(r.out, "val_loss");
    }
};

void check_round_trips(FamilyRun& f, const char* architecture, const char* gguf_arch) {
    const auto first = f.generate(f.model);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(first.out.rfind("Once upon a time", 0), 0u) << first.out;
    const double loss = f.val_loss(f.model);
    const std::string convert = std::string(ANE_CONVERT_BIN) + " ";

    auto r = test::run(convert + "export-hf " + f.model + " -o " + f.dir.path("hf") + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto cfg = nlohmann::json::parse(read_text_file(f.dir.path("hf/config.json")));
    EXPECT_EQ(cfg["architectures"][0], architecture);
    r = test::run(convert + "hf " + f.dir.path("hf") + " -o " + f.dir.path("from_hf.bin") + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(f.generate(f.dir.path("from_hf.bin")).out, first.out);

    r = test::run(convert + "export-gguf " + f.model + " -o " + f.dir.path("m.gguf") + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(GgufFile(f.dir.path("m.gguf")).find("general.architecture")->s, gguf_arch);
    EXPECT_EQ(f.generate(f.dir.path("m.gguf")).out, first.out);
    EXPECT_NEAR(f.val_loss(f.dir.path("m.gguf")), loss, 1e-4);

    // The int8 artifact keeps the extras too.
    r = test::run(convert + "pack " + f.model + " -o " + f.dir.path("m.ptz") + " -q");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NEAR(f.val_loss(f.dir.path("m.ptz")), loss, 0.05);
}

#define REQUIRE_FAMILY_DATA()                                                                    \
    ANE_REQUIRE_SHARED(test::shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model"));     \
    ANE_REQUIRE_SHARED(test::shared_data("corpus-tinystories-excerpt/tinystories_train_head.txt"))

TEST(CliModelFamilies, Qwen2ModelTravelsThroughEveryFormat) {
    REQUIRE_FAMILY_DATA();
    FamilyRun f;
    ASSERT_NO_FATAL_FAILURE(f.prepare(R"("attention_bias": true)"));
    check_round_trips(f, "Qwen2ForCausalLM", "qwen2");
}

TEST(CliModelFamilies, Qwen3ModelTravelsThroughEveryFormatAndTunes) {
    REQUIRE_FAMILY_DATA();
    FamilyRun f;
    ASSERT_NO_FATAL_FAILURE(f.prepare(R"("qk_norm": true)"));
    check_round_trips(f, "Qwen3ForCausalLM", "qwen3");

    const double before = f.val_loss(f.model);
    const std::string common = " --init " + f.model + " --data " + f.data + " --val " + f.val +
                               " --threads 2 -q -f --eval-every 100 ";
    for (const std::string mode : {"none", "split", "merge"}) {
        const std::string out = f.dir.path("mezo-" + mode + ".bin");
        const auto r = test::run(std::string(ANE_MEZO_BIN) + common + " --steps 100" +
                                 (mode == "none" ? " --lr 1e-4" : " --lr 1e-3 --lora " + mode) + " -o " + out);
        ASSERT_EQ(r.exit_code, 0) << mode << ": " << r.err;
        EXPECT_LT(test::report_value(r.out, "best_val_loss"), before) << mode;
        EXPECT_TRUE(load_model(out).weights.config.qk_norm) << mode;
    }
    // Backprop LoRA trains the adapters and the norm gains, QK-norm's among them.
    const auto r = test::run(std::string(ANE_TRAIN_BIN) + common + " --steps 20 --batch 2 --lora-rank 4 --lr 3e-3 -o " +
                             f.dir.path("lora.bin"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const Checkpoint base = read_blzt(f.model), tuned = read_blzt(f.dir.path("lora.bin"));
    ASSERT_TRUE(tuned.lora.has_value());
    EXPECT_FALSE(tuned.weights.layers[0].q_norm.bit_equal(base.weights.layers[0].q_norm));
    EXPECT_TRUE(tuned.weights.layers[0].wq.bit_equal(base.weights.layers[0].wq));  // the adapters stay apart
}

}  // namespace
}  // namespace ane
