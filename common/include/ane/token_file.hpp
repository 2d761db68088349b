#pragma once
// Token files (spec/data.md): raw little-endian uint16 ids, or the parameter-golf / llm.c
// shard with a 256 x int32 header (magic 20240520, uint16 ids), or llm.c's shard for larger
// vocabularies (magic 20240801, version 7, uint32 ids: Llama 3, Qwen). Memory-mapped, never copied.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "ane/file_io.hpp"

namespace ane {

enum class TokenFormat { Raw, Shard, Shard32 };
const char* token_format_name(TokenFormat f);
TokenFormat parse_token_format(const std::string& name);  // "raw", "shard" or "shard32"
// The largest id a format stores.
std::uint32_t max_token_id(TokenFormat f);

constexpr std::int32_t kShardMagic = 20240520;
constexpr std::int32_t kShardVersion = 1;
constexpr std::int32_t kShard32Magic = 20240801;
constexpr std::int32_t kShard32Version = 7;
constexpr std::size_t kShardHeaderBytes = 256 * 4;

// True when the file carries a shard magic and version (its size is checked on open).
bool has_shard_header(const std::uint8_t* data, std::size_t size);

// Token ids stored as uint16 or uint32: a view, as std::span, that reads either width.
class TokenSpan {
public:
    TokenSpan() = default;
    TokenSpan(std::span<const std::uint16_t> s) : data_(s.data()), size_(s.size()) {}
    TokenSpan(std::span<const std::uint32_t> s) : data_(s.data()), size_(s.size()), wide_(true) {}
    TokenSpan(const std::vector<std::uint16_t>& v) : TokenSpan(std::span<const std::uint16_t>(v)) {}
    TokenSpan(const std::vector<std::uint32_t>& v) : TokenSpan(std::span<const std::uint32_t>(v)) {}

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    bool wide() const { return wide_; }
    std::uint32_t operator[](std::size_t i) const {
        return wide_ ? static_cast<const std::uint32_t*>(data_)[i] : static_cast<const std::uint16_t*>(data_)[i];
    }
    TokenSpan subspan(std::size_t offset, std::size_t count = std::size_t(-1)) const {
        TokenSpan t = *this;
        t.data_ = static_cast<const char*>(data_) + offset * (wide_ ? 4 : 2);
        t.size_ = count == std::size_t(-1) ? size_ - offset : count;
        return t;
    }
    TokenSpan first(std::size_t count) const { return subspan(0, count); }
    std::uint32_t max() const;

    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = std::uint32_t;
        using difference_type = std::ptrdiff_t;
        using pointer = void;
        using reference = std::uint32_t;
        iterator() = default;
        iterator(const TokenSpan* s, std::size_t i) : s_(s), i_(i) {}
        std::uint32_t operator*() const { return (*s_)[i_]; }
        iterator& operator++() { ++i_; return *this; }
        iterator operator++(int) { iterator t = *this; ++i_; return t; }
        bool operator==(const iterator& o) const { return i_ == o.i_; }

    private:
        const TokenSpan* s_ = nullptr;
        std::size_t i_ = 0;
    };
    iterator begin() const { return {this, 0}; }
    iterator end() const { return {this, size_}; }

private:
    const void* data_ = nullptr;
    std::size_t size_ = 0;
    bool wide_ = false;
};

class TokenFile {
public:
    // Detects the format; rejects an empty file, an odd size, or a shard whose header count
    // disagrees with its size.
    explicit TokenFile(const std::string& path);

    const std::string& path() const { return file_.path(); }
    TokenFormat format() const { return format_; }
    TokenSpan tokens() const { return tokens_; }
    std::size_t size() const { return tokens_.size(); }
    std::uint32_t operator[](std::size_t i) const { return tokens_[i]; }

    // Throws, naming the first offending position and id, if any id is >= vocab.
    void check_vocab(int vocab) const;
    std::uint32_t max_id() const { return tokens_.max(); }

private:
    MappedFile file_;
    TokenFormat format_ = TokenFormat::Raw;
    TokenSpan tokens_;
};

// Throws naming the first id the format cannot store.
void write_token_file(const std::string& path, TokenSpan tokens, TokenFormat format);

// AutoANE's contiguous split by position: train [0, floor(0.9 n)), validation the rest.
struct TokenSplit {
    std::size_t train_tokens = 0;  // tokens [0, train_tokens)
    std::size_t val_start = 0;     // == train_tokens
    std::size_t val_tokens = 0;    // tokens [val_start, val_start + val_tokens)
};
TokenSplit split_train_val(std::size_t n_tokens, double train_fraction = 0.9);

}  // namespace ane
