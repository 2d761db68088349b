#pragma once
// Token files (spec/data.md): raw little-endian uint16 ids, or the parameter-golf / llm.c
// shard with a 256 x int32 header (magic 20240520). Memory-mapped, never copied.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ane/file_io.hpp"

namespace ane {

enum class TokenFormat { Raw, Shard };
const char* token_format_name(TokenFormat f);
TokenFormat parse_token_format(const std::string& name);  // "raw" or "shard"

constexpr std::int32_t kShardMagic = 20240520;
constexpr std::int32_t kShardVersion = 1;
constexpr std::size_t kShardHeaderBytes = 256 * 4;

// True when the file carries the shard magic and version (its size is checked on open).
bool has_shard_header(const std::uint8_t* data, std::size_t size);

class TokenFile {
public:
    // Detects the format; rejects an empty file, an odd size, or a shard whose header count
    // disagrees with its size.
    explicit TokenFile(const std::string& path);

    const std::string& path() const { return file_.path(); }
    TokenFormat format() const { return format_; }
    std::span<const std::uint16_t> tokens() const { return {tokens_, count_}; }
    std::size_t size() const { return count_; }
    std::uint16_t operator[](std::size_t i) const { return tokens_[i]; }

    // Throws, naming the first offending position and id, if any id is >= vocab.
    void check_vocab(int vocab) const;
    std::uint16_t max_id() const;

private:
    MappedFile file_;
    TokenFormat format_ = TokenFormat::Raw;
    const std::uint16_t* tokens_ = nullptr;
    std::size_t count_ = 0;
};

void write_token_file(const std::string& path, std::span<const std::uint16_t> tokens, TokenFormat format);

// AutoANE's contiguous split by position: train [0, floor(0.9 n)), validation the rest.
struct TokenSplit {
    std::size_t train_tokens = 0;  // tokens [0, train_tokens)
    std::size_t val_start = 0;     // == train_tokens
    std::size_t val_tokens = 0;    // tokens [val_start, val_start + val_tokens)
};
TokenSplit split_train_val(std::size_t n_tokens, double train_fraction = 0.9);

}  // namespace ane
