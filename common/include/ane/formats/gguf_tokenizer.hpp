#pragma once
// A tokenizer's vocabulary as GGUF `tokenizer.ggml.*` metadata, for export.
#include <string>
#include <utility>
#include <vector>

#include "ane/formats/gguf.hpp"
#include "ane/tokenizer.hpp"

namespace ane {

// llama.cpp's SentencePiece ("llama") vocabulary: tokens, scores, token types, special ids.
std::vector<std::pair<std::string, GgufValue>> gguf_metadata_from_tokenizer(const Tokenizer& tok);

}  // namespace ane
