#pragma once
// A tokenizer's vocabulary as GGUF `tokenizer.ggml.*` metadata, for export.
#include <string>
#include <utility>
#include <vector>

#include "ane/formats/gguf.hpp"
#include "ane/tokenizer.hpp"

namespace ane {

// llama.cpp's token types (tokenizer.ggml.token_type).
constexpr int kGgufNormal = 1, kGgufUnknown = 2, kGgufControl = 3, kGgufUserDefined = 4, kGgufUnused = 5,
              kGgufByte = 6;
// One token_type entry of a file from outside, read without overflow: values no type has are normal.
int gguf_token_type(const GgufValue& entry);
// The token id under `key` (tokenizer.ggml.bos_token_id, ...), or -1 when it is absent, not an
// integer, or outside a vocabulary of n tokens.
int gguf_token_id(const GgufFile& f, const std::string& key, std::size_t n);

// llama.cpp's SentencePiece ("llama") vocabulary: tokens, scores, token types, special ids; or
// its byte-level BPE ("gpt2") one for such tokenizers, padded to `rows` tokens with unused
// "[PAD<id>]" tokens as llama.cpp's converter does for models whose embedding is padded (Qwen).
std::vector<std::pair<std::string, GgufValue>> gguf_metadata_from_tokenizer(const Tokenizer& tok, int rows = 0);

}  // namespace ane
