#pragma once
// Chat formatting for instruct models, from the chat_template of their tokenizer_config.json.
// Not a Jinja engine: the template is recognised as one of the families below and rendered as
// that family's template renders conversations without tools; anything else is refused by name.
#include <string>
#include <vector>

namespace ane {

struct ChatMessage {
    std::string role;  // system, user, assistant
    std::string content;
};

enum class ChatFamily {
    ChatML,  // <|im_start|>role\n...<|im_end|>\n (SmolLM2-Instruct, Qwen2), with the template's default system message
    Qwen3,   // ChatML with Qwen3's <think> blocks
    Llama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> (Llama 3 Instruct)
};

struct ChatTemplate {
    ChatFamily family = ChatFamily::ChatML;
    std::string default_system;  // ChatML: the system message the template adds when there is none
    std::string bos_text;        // Llama 3: the BOS token's text, before the first message
    std::string end_of_turn;     // the token that ends a turn: generation stops there
    const char* name() const;
    // The prompt text (special tokens spelled out); with add_generation_prompt it ends where the
    // assistant's reply begins. enable_thinking false: Qwen3's empty <think> block.
    std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                       bool enable_thinking = true) const;
};

// From the text of a tokenizer_config.json. Throws naming the file when it has no chat_template
// or one of another family.
ChatTemplate chat_template_from_config(const std::string& config_json, const std::string& origin);

}  // namespace ane
