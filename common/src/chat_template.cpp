#include "ane/chat_template.hpp"

#include <nlohmann/json.hpp>

#include "ane/error.hpp"

namespace ane {

namespace {

bool has(const std::string& text, const char* what) { return text.find(what) != std::string::npos; }

std::string trim(const std::string& s) {
    const auto begin = s.find_first_not_of(" \t\n\r\f\v");
    if (begin == std::string::npos) return "";
    return s.substr(begin, s.find_last_not_of(" \t\n\r\f\v") - begin + 1);
}

std::string strip(const std::string& s, char c, bool left, bool right) {
    std::size_t b = 0, e = s.size();
    while (left && b < e && s[b] == c) ++b;
    while (right && e > b && s[e - 1] == c) --e;
    return s.substr(b, e - b);
}

// A literal '<|im_start|>system\n...<|im_end|>\n' in the template: its default system message.
std::string chatml_default_system(const std::string& t) {
    for (const char* open : {"'<|im_start|>system\\n", "\"<|im_start|>system\\n"}) {
        const auto at = t.find(open);
        if (at == std::string::npos) continue;
        const auto begin = at + std::string(open).size();
        const auto end = t.find("<|im_end|>", begin);
        if (end == std::string::npos) continue;
        std::string message = t.substr(begin, end - begin);
        if (message.find("{{") != std::string::npos || message.find('\'') != std::string::npos) continue;
        return message;
    }
    return "";
}

std::string chatml_turn(const std::string& role, const std::string& content) {
    return "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
}

}  // namespace

const char* ChatTemplate::name() const {
    switch (family) {
        case ChatFamily::ChatML: return "ChatML";
        case ChatFamily::Qwen3: return "Qwen3 (ChatML with <think>)";
        case ChatFamily::Llama3: return "Llama 3";
    }
    return "?";
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 bool enable_thinking) const {
    std::string out;
    if (family == ChatFamily::Llama3) {
        for (std::size_t i = 0; i < messages.size(); ++i)
            out += (i == 0 ? bos_text : "") + "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" +
                   trim(messages[i].content) + "<|eot_id|>";
        if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
        return out;
    }
    if (family == ChatFamily::ChatML) {
        if (!default_system.empty() && (messages.empty() || messages[0].role != "system"))
            out += chatml_turn("system", default_system);
        for (const auto& m : messages) out += chatml_turn(m.role, m.content);
        if (add_generation_prompt) out += "<|im_start|>assistant\n";
        return out;
    }
    // Qwen3: an assistant turn after the last user message shows its reasoning in a <think>
    // block (empty when it has none); earlier ones keep only their answer.
    std::size_t last_query = messages.size();
    for (std::size_t i = messages.size(); i-- > 0;)
        if (messages[i].role == "user") {
            last_query = i;
            break;
        }
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role != "assistant") {
            out += chatml_turn(m.role, m.content);
            continue;
        }
        std::string content = m.content, reasoning;
        if (content.find("</think>") != std::string::npos) {  // the answer after the last </think>
            std::string before = strip(content.substr(0, content.find("</think>")), '\n', false, true);
            if (const auto open = before.rfind("<think>"); open != std::string::npos) before = before.substr(open + 7);
            reasoning = strip(before, '\n', true, false);
            content = strip(content.substr(content.rfind("</think>") + 8), '\n', true, false);
        }
        const bool show = last_query < messages.size() && i > last_query && (i + 1 == messages.size() || !reasoning.empty());
        out += "<|im_start|>assistant\n" +
               (show ? "<think>\n" + strip(reasoning, '\n', true, true) + "\n</think>\n\n" + strip(content, '\n', true, false)
                     : content) +
               "<|im_end|>\n";
    }
    if (add_generation_prompt) {
        out += "<|im_start|>assistant\n";
        if (!enable_thinking) out += "<think>\n\n</think>\n\n";
    }
    return out;
}

ChatTemplate chat_template_from_config(const std::string& config_json, const std::string& origin) {
    nlohmann::json config;
    try {
        config = nlohmann::json::parse(config_json);
    } catch (const nlohmann::json::exception& e) {
        throw error(origin, ": not valid JSON: ", e.what());
    }
    std::string t;
    const auto& field = config.value("chat_template", nlohmann::json());
    if (field.is_string()) {
        t = field.get<std::string>();
    } else if (field.is_array()) {  // named templates: the "default" one
        for (const auto& named : field)
            if (named.value("name", "") == "default") t = named.value("template", "");
    }
    require(!t.empty(), origin, ": no chat_template (not an instruct model's tokenizer_config.json)");
    ChatTemplate c;
    if (has(t, "<|im_start|>")) {
        c.family = has(t, "<think>") ? ChatFamily::Qwen3 : ChatFamily::ChatML;
        c.end_of_turn = "<|im_end|>";
        if (c.family == ChatFamily::ChatML) c.default_system = chatml_default_system(t);
        return c;
    }
    if (has(t, "<|start_header_id|>")) {
        require(!has(t, "Today Date"), origin,
                ": Llama 3.1-style chat template (dates, tools) is not supported; format the prompt yourself with --prompt");
        c.family = ChatFamily::Llama3;
        c.end_of_turn = "<|eot_id|>";
        const auto& bos = config.value("bos_token", nlohmann::json());
        c.bos_text = bos.is_string() ? bos.get<std::string>() : bos.is_object() ? bos.value("content", "") : "";
        return c;
    }
    throw error(origin, ": chat template not recognised (ChatML, Qwen3 and Llama 3 are): \"",
                t.substr(0, std::min<std::size_t>(t.size(), 60)), "...\"");
}

}  // namespace ane
