// Chat templates: Qwen3's renders as Hugging Face's Jinja renders it (chat_template_renders.json),
// Llama 3's and ChatML by their templates' rules; other templates are refused by name.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ane/chat_template.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "test_util.hpp"

namespace ane {
namespace {

TEST(ChatTemplate, Qwen3MatchesHuggingFaceRenders) {
    const std::string dir = test::shared_data("tokenizer-qwen3");
    ANE_REQUIRE_SHARED(dir + "/chat_template_renders.json");
    const ChatTemplate t = chat_template_from_config(read_text_file(dir + "/tokenizer_config.json"), "qwen3");
    EXPECT_EQ(t.family, ChatFamily::Qwen3);
    EXPECT_EQ(t.end_of_turn, "<|im_end|>");
    const auto renders = nlohmann::json::parse(read_text_file(dir + "/chat_template_renders.json"));
    int cases = 0;
    for (const auto& c : renders["cases"]) {
        std::vector<ChatMessage> messages;
        for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
        EXPECT_EQ(t.render(messages, c["add_generation_prompt"], c.value("enable_thinking", true)),
                  c["rendered"].get<std::string>())
            << c["name"];
        ++cases;
    }
    EXPECT_EQ(cases, 4);
    // Reasoning kept only after the last question: an earlier answer loses its <think> block.
    const std::vector<ChatMessage> m = {{"user", "a"}, {"assistant", "<think>\nhm\n</think>\n\nb"}, {"user", "c"},
                                        {"assistant", "<think>ok</think>d"}};
    EXPECT_EQ(t.render(m, false), "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n"
                                  "<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n<think>\nok\n</think>\n\nd<|im_end|>\n");
}

TEST(ChatTemplate, Llama3AsItsTemplateWritesIt) {
    const std::string dir = test::shared_data("tokenizer-llama3");
    ANE_REQUIRE_SHARED(dir + "/tokenizer_config.json");
    const ChatTemplate t = chat_template_from_config(read_text_file(dir + "/tokenizer_config.json"), "llama3");
    EXPECT_EQ(t.family, ChatFamily::Llama3);
    EXPECT_EQ(t.end_of_turn, "<|eot_id|>");
    EXPECT_EQ(t.render({{"system", " Be brief. "}, {"user", "Hi"}}, true),
              "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    // Llama 3.1's template (dates, tools) is refused, naming what it is.
    const nlohmann::json with_dates = {{"chat_template", read_text_file(dir + "/meta-llama-Llama-3.1-8B-Instruct.jinja")}};
    try {
        chat_template_from_config(with_dates.dump(), "cfg.json");
        ADD_FAILURE() << "accepted Llama 3.1's template";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("Llama 3.1-style"), std::string::npos) << e.what();
    }
}

TEST(ChatTemplate, ChatMLWithTheTemplatesDefaultSystemMessage) {
    // SmolLM2-Instruct's template adds its own system message when the conversation has none.
    const nlohmann::json config = {
        {"chat_template",
         "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
         "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' "
         "+ message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
         "{{ '<|im_start|>assistant\\n' }}{% endif %}"}};
    const ChatTemplate t = chat_template_from_config(config.dump(), "smol");
    EXPECT_EQ(t.family, ChatFamily::ChatML);
    EXPECT_EQ(t.render({{"user", "Hi"}}, true),
              "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
              "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(t.render({{"system", "S"}, {"user", "Hi"}}, false),
              "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, UnknownOrMissingTemplatesAreRefusedByName) {
    for (const auto& [config, what] : std::vector<std::pair<std::string, std::string>>{
             {R"({"chat_template": "{{ bos_token }}[INST] {{ m }} [/INST]"})", "chat template not recognised"},
             {R"({"eos_token": "</s>"})", "no chat_template"},
             {"{", "not valid JSON"}}) {
        try {
            chat_template_from_config(config, "cfg.json");
            ADD_FAILURE() << config;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace ane
