#pragma once
// Vocabularies given as pieces with scores, encoded the way SentencePiece's BPE and llama2.c's
// run.c do it: characters (or byte-fallback tokens for characters outside the vocabulary),
// then repeatedly merging the adjacent pair whose concatenation has the highest score.
// Built from a GGUF's tokenizer.ggml.* metadata or from llama2.c's tokenizer.bin / tok512.bin.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ane/tokenizer.hpp"

namespace ane {

class GgufFile;

struct ScoreVocabulary {
    std::vector<std::string> pieces;   // as stored; GGUF uses '▁' for spaces, llama2.c uses ' '
    std::vector<float> scores;
    std::vector<TokenKind> kinds;
    int bos = -1, eos = -1;
    bool space_marker = true;          // pieces spell spaces as '▁'
    bool add_dummy_prefix = true;      // a space before the text, as SentencePiece does
};

std::unique_ptr<Tokenizer> make_score_tokenizer(ScoreVocabulary vocab, std::string origin);
// A GGUF's `llama` (SentencePiece) vocabulary; other tokenizer models are named in the error.
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const GgufFile& gguf);
// llama2.c's tokenizer.bin: int32 max_token_length, then per token float score, int32 length, bytes.
// vocab_size 0: as many tokens as the file holds.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int vocab_size = 0);

}  // namespace ane
