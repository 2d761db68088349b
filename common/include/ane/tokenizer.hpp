#pragma once
// One interface over the suite's tokenizers, and the parameter-golf byte-counting rule that
// bits-per-byte is computed with.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ane {

enum class TokenKind { Normal, Control, Unknown, Unused, Byte };
struct BpeVocabulary;

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    virtual int vocab_size() const = 0;
    // Plain text to ids; never adds BOS or EOS.
    virtual std::vector<int> encode(std::string_view text) const = 0;
    virtual std::string decode(std::span<const int> ids) const = 0;
    virtual std::string piece(int id) const = 0;
    virtual TokenKind kind(int id) const = 0;
    virtual float score(int id) const = 0;  // the piece's log-probability or merge rank
    virtual int bos_id() const = 0;  // -1 when the vocabulary has none
    virtual int eos_id() const = 0;
    virtual std::string describe() const = 0;  // e.g. "SentencePiece BPE, 1024 tokens"
    // The text token `id` adds when it follows `prev` in a stream (for printing as tokens
    // arrive): byte tokens as bytes, control tokens as nothing, no space right after BOS.
    virtual std::string token_text(int prev, int id) const;
    // Whether encoding puts a space before the text (SentencePiece's add_dummy_prefix;
    // llama.cpp's tokenizer.ggml.add_space_prefix). By default found by encoding "a".
    virtual bool adds_space_prefix() const;
    // Pieces spelled in GPT-2's byte alphabet ("Ġthe"): a token's bytes are what it decodes to.
    virtual bool byte_level() const { return false; }
    // A byte-level BPE's vocabulary, merges and pre-tokenizer, for writers (nullptr otherwise).
    virtual const BpeVocabulary* bpe_vocabulary() const { return nullptr; }
};

// Parameter-golf's lookup tables: a token's UTF-8 bytes (byte-fallback tokens 1; control,
// unknown and unused tokens 0 and boundaries; other pieces their bytes without a leading
// '▁'), plus 1 for that '▁' unless the previous token is a boundary. Ids past the
// tokenizer's vocabulary (a model's padding rows) count 0 and are boundaries.
class ByteCounter {
public:
    ByteCounter(const Tokenizer& tok, int table_size = 0);
    int table_size() const { return int(base_bytes_.size()); }
    int base_bytes(int id) const { return base_bytes_[id]; }
    bool has_leading_space(int id) const { return leading_space_[id]; }
    bool is_boundary(int id) const { return boundary_[id]; }
    // Bytes that token `id` stands for when it follows token `prev` (prev < 0: a boundary).
    int bytes(int prev, int id) const {
        return base_bytes_[id] + ((leading_space_[id] && !(prev < 0 || boundary_[prev])) ? 1 : 0);
    }
    // Sum over a sequence whose first element follows `prev`.
    std::int64_t count(std::span<const int> ids, int prev = -1) const;

private:
    std::vector<std::int16_t> base_bytes_;
    std::vector<std::uint8_t> leading_space_, boundary_;
};

// Loads a SentencePiece model, a llama2.c tokenizer.bin, a GGUF vocabulary, a Hugging Face
// tokenizer.json, or the tokenizer a model file carries, by content.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path);
std::unique_ptr<Tokenizer> sentencepiece_from_bytes(std::string_view serialized, const std::string& origin);

}  // namespace ane
