#pragma once
// The tokenizer a tool uses with a model: the one given on the command line (any kind
// load_tokenizer reads), else the one the model file carries. A tokenizer of more tokens than
// the model's vocabulary, or of fewer than its rows less a little padding, belongs to another
// model: that is an error saying so.
#include <memory>
#include <string>

#include "ane/chat_template.hpp"
#include "ane/checkpoint.hpp"
#include "ane/tokenizer.hpp"

namespace ane {

// The tokenizer the model file carries (tokenizer.json, SentencePiece model or GGUF
// vocabulary), or nullptr.
std::unique_ptr<Tokenizer> embedded_tokenizer(const Checkpoint& ck, const std::string& model_path);

// Returns nullptr when there is none and `required` is false.
std::unique_ptr<Tokenizer> model_tokenizer(const std::string& tokenizer_path, const Checkpoint& ck,
                                           const std::string& model_path, bool required);

// The chat template of an instruct model: from the tokenizer_config.json it carries, a GGUF's
// tokenizer.chat_template, or the tokenizer_config.json beside `tokenizer_path`. Throws saying
// which of those it looked for.
ChatTemplate model_chat_template(const Checkpoint& ck, const std::string& model_path, const std::string& tokenizer_path);

}  // namespace ane
