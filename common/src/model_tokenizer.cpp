#include "ane/model_tokenizer.hpp"

#include "ane/error.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/score_tokenizer.hpp"

namespace ane {

std::unique_ptr<Tokenizer> model_tokenizer(const std::string& tokenizer_path, const Checkpoint& ck,
                                           const std::string& model_path, bool required) {
    const int vocab = ck.weights.config.vocab;
    std::unique_ptr<Tokenizer> tok;
    std::string origin = tokenizer_path;
    if (!tokenizer_path.empty()) {
        tok = load_tokenizer(tokenizer_path);
    } else if (!ck.tokenizer_model.empty()) {
        origin = model_path + " (its embedded tokenizer)";
        tok = sentencepiece_from_bytes(std::string(ck.tokenizer_model.begin(), ck.tokenizer_model.end()), origin);
    } else if (!ck.tokenizer_gguf.empty()) {
        origin = model_path + " (its embedded vocabulary)";
        tok = tokenizer_from_gguf(GgufFile(ck.tokenizer_gguf, origin));
    } else {
        if (!required) return nullptr;
        throw error(model_path,
                    ": carries no tokenizer; give --tokenizer (a SentencePiece .model, llama2.c tokenizer.bin or a "
                    "GGUF with a vocabulary)");
    }
    // Models pad their embedding past the tokenizer (Qwen: 151,936 rows for 151,669 tokens);
    // more padding than 1/64 of the rows means the tokenizer belongs to another model.
    const int n = tok->vocab_size();
    require(n <= vocab && vocab - n <= vocab / 64, origin, ": vocabulary mismatch: the tokenizer has ", n,
            " tokens but the model ", model_path, " has ", vocab, "; they belong to different models");
    return tok;
}

}  // namespace ane
