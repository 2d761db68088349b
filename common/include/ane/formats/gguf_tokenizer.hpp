#pragma once
// A tokenizer's vocabulary as GGUF `tokenizer.ggml.*` metadata, for export.
#include <string>
#include <utility>
#include <vector>

#include "ane/formats/gguf.hpp"
#include "ane/tokenizer.hpp"

namespace ane {

// llama.cpp's SentencePiece ("llama") vocabulary: tokens, scores, token types, special ids; or
// its byte-level BPE ("gpt2") one for such tokenizers, padded to `rows` tokens with unused
// "[PAD<id>]" tokens as llama.cpp's converter does for models whose embedding is padded (Qwen).
std::vector<std::pair<std::string, GgufValue>> gguf_metadata_from_tokenizer(const Tokenizer& tok, int rows = 0);

}  // namespace ane
