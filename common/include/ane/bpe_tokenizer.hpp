#pragma once
// BPE as Hugging Face's tokenizers library runs it. Byte-level (GPT-2, Llama 3, Qwen2/3,
// SmolLM2): added tokens matched first, NFC normalization where the file asks for it, the
// pre-tokenizer's regexes (PCRE2, Unicode classes), each piece's bytes mapped to GPT-2's
// printable alphabet, then merges applied by rank. Metaspace (files converted from
// SentencePiece: Llama 2, Mistral, TinyLlama): spaces spelled ▁, a ▁ before the text, merges
// over characters, a character outside the vocabulary as its <0xNN> byte tokens.
// Built from a `tokenizer.json`.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ane/tokenizer.hpp"

namespace ane {

class GgufFile;
struct GgufValue;

struct AddedToken {
    std::string content;
    int id = -1;
    bool special = true;
    bool lstrip = false, rstrip = false;  // the token takes the whitespace on that side with it
};

struct BpeVocabulary {
    std::vector<std::string> pieces;  // id -> token as the vocabulary spells it (byte-level alphabet)
    std::vector<TokenKind> kinds;
    std::vector<std::pair<std::string, std::string>> merges;  // in rank order
    std::vector<AddedToken> added;
    std::vector<std::string> split_patterns;  // pre-tokenizer regexes, applied in turn ("Isolated")
    bool add_prefix_space = false;             // a space before text that does not start with one
    bool nfc = false;                          // NFC-normalize text outside added tokens
    bool ignore_merges = false;                // a piece that is a token is taken whole (Llama 3)
    int bos = -1, eos = -1, unk = -1;

    // Metaspace vocabularies (metaspace non-empty, the spelling of a space: "▁").
    std::string metaspace;
    // ▁ before a stretch of text: the Metaspace pre-tokenizer's schemes (always, also after an
    // added token, or only at the start; not when the stretch begins with a space), or the
    // older files' Prepend normalizer (always, whatever the stretch begins with).
    enum class Prepend { never, first, always, normalizer };
    Prepend prepend = Prepend::never;
    bool metaspace_split = false;       // each ▁ begins a new piece (else the stretch is one)
    bool byte_fallback = false;         // an unknown character as its <0xNN> tokens, else unk
    bool fuse_unk = false;              // consecutive unknown characters give one unk
    // Decoding: the space the ▁ prefix stands for is dropped, as the Strip decoder does (one
    // leading space of the text) or the Metaspace decoder does (every ▁ of the first token).
    enum class PrefixStrip { none, leading_space, first_token };
    PrefixStrip prefix_strip = PrefixStrip::none;
    bool decode_byte_tokens = false;    // <0xNN> tokens decode to their byte (a ByteFallback decoder)

    bool byte_level() const { return metaspace.empty(); }
};

std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeVocabulary vocab, std::string origin);

// A `tokenizer.json`; its eos token from `tokenizer_config.json` beside it when there is one.
// Kinds of model, normalizer or pre-tokenizer it cannot run are errors naming them.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::string& path);
std::unique_ptr<Tokenizer> hf_tokenizer_from_json(const std::string& json, const std::string& config_json,
                                                  const std::string& origin);

// A GGUF's `gpt2` vocabulary, tokenized as llama.cpp does (special tokens matched in the text;
// no normalizer); and the tokenizer.ggml.* keys that write one.
std::unique_ptr<Tokenizer> bpe_tokenizer_from_gguf(const GgufFile& gguf);
std::vector<std::pair<std::string, GgufValue>> gguf_metadata_from_bpe(const BpeVocabulary& vocab, int rows = 0);

// GPT-2's ByteLevel pre-tokenizer regex (use_regex: true).
extern const char* const kGpt2SplitPattern;

// llama.cpp names its pre-tokenizers (GGUF tokenizer.ggml.pre): the regexes of "gpt-2",
// "llama-bpe", "qwen2" and "smollm", and the name of a list of regexes ("" if none fits).
// Unknown names are errors naming them.
std::vector<std::string> split_patterns_of_llama_cpp_pre(const std::string& name);
std::string llama_cpp_pre_of(const std::vector<std::string>& split_patterns);

}  // namespace ane
