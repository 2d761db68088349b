#include "ane/model_tokenizer.hpp"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ane/bpe_tokenizer.hpp"
#include "ane/file_io.hpp"
#include "ane/error.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/gguf_tokenizer.hpp"
#include "ane/score_tokenizer.hpp"

namespace ane {

std::unique_ptr<Tokenizer> embedded_tokenizer(const Checkpoint& ck, const std::string& model_path) {
    const std::string origin = model_path + " (its embedded tokenizer)";
    const auto text = [](const std::vector<std::uint8_t>& b) { return std::string(b.begin(), b.end()); };
    if (!ck.tokenizer_json.empty())
        return hf_tokenizer_from_json(text(ck.tokenizer_json), text(ck.tokenizer_config_json), origin);
    if (!ck.tokenizer_model.empty()) return sentencepiece_from_bytes(text(ck.tokenizer_model), origin);
    if (!ck.tokenizer_gguf.empty()) return tokenizer_from_gguf(GgufFile(ck.tokenizer_gguf, model_path + " (its embedded vocabulary)"));
    return nullptr;
}

ChatTemplate model_chat_template(const Checkpoint& ck, const std::string& model_path, const std::string& tokenizer_path) {
    if (!tokenizer_path.empty()) {
        const auto config = std::filesystem::path(tokenizer_path).parent_path() / "tokenizer_config.json";
        require(std::filesystem::exists(config), "--chat: no tokenizer_config.json beside ", tokenizer_path,
                " (it holds the chat template)");
        return chat_template_from_config(read_text_file(config.string()), config.string());
    }
    if (!ck.tokenizer_config_json.empty())
        return chat_template_from_config(std::string(ck.tokenizer_config_json.begin(), ck.tokenizer_config_json.end()),
                                         model_path + " (its tokenizer_config.json)");
    if (!ck.tokenizer_gguf.empty()) {
        const GgufFile vocab(ck.tokenizer_gguf, model_path + " (its embedded vocabulary)");
        const GgufValue* t = vocab.find("tokenizer.chat_template");
        if (t && t->type == GgufValueType::STRING) {
            nlohmann::json config = {{"chat_template", t->s}};
            const GgufValue* tokens = vocab.find("tokenizer.ggml.tokens");
            const int bos = tokens ? gguf_token_id(vocab, "tokenizer.ggml.bos_token_id", tokens->array.size()) : -1;
            if (bos >= 0) config["bos_token"] = tokens->array[std::size_t(bos)].s;
            return chat_template_from_config(config.dump(), model_path + " (its tokenizer.chat_template)");
        }
    }
    throw error("--chat: ", model_path, " carries no chat template (import an instruct model with its "
                "tokenizer_config.json, or give -t DIR/tokenizer.json with tokenizer_config.json beside it)");
}

std::unique_ptr<Tokenizer> model_tokenizer(const std::string& tokenizer_path, const Checkpoint& ck,
                                           const std::string& model_path, bool required) {
    const int vocab = ck.weights.config.vocab;
    std::unique_ptr<Tokenizer> tok;
    std::string origin = tokenizer_path;
    if (!tokenizer_path.empty()) {
        tok = load_tokenizer(tokenizer_path);
    } else if (auto embedded = embedded_tokenizer(ck, model_path)) {
        tok = std::move(embedded);
        origin = model_path + " (its embedded tokenizer)";
    } else {
        if (!required) return nullptr;
        throw error(model_path,
                    ": carries no tokenizer; give --tokenizer (a SentencePiece .model, llama2.c tokenizer.bin, a "
                    "GGUF with a vocabulary or a tokenizer.json)");
    }
    // Models pad their embedding past the tokenizer (Qwen: 151,936 rows for 151,669 tokens);
    // more padding than 1/64 of the rows means the tokenizer belongs to another model.
    const int n = tok->vocab_size();
    require(n <= vocab && vocab - n <= vocab / 64, origin, ": vocabulary mismatch: the tokenizer has ", n,
            " tokens but the model ", model_path, " has ", vocab, "; they belong to different models");
    return tok;
}

}  // namespace ane
