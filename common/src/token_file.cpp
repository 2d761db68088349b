#include "ane/token_file.hpp"

#include <algorithm>
#include <cstring>

#include "ane/error.hpp"

namespace ane {

const char* token_format_name(TokenFormat f) {
    return f == TokenFormat::Raw ? "raw" : f == TokenFormat::Shard ? "shard" : "shard32";
}

TokenFormat parse_token_format(const std::string& name) {
    if (name == "raw") return TokenFormat::Raw;
    if (name == "shard") return TokenFormat::Shard;
    if (name == "shard32") return TokenFormat::Shard32;
    throw error("unknown token format '", name, "' (expected raw, shard or shard32)");
}

std::uint32_t max_token_id(TokenFormat f) { return f == TokenFormat::Shard32 ? UINT32_MAX : UINT16_MAX; }

std::uint32_t TokenSpan::max() const {
    std::uint32_t m = 0;
    for (std::size_t i = 0; i < size_; ++i) m = std::max(m, (*this)[i]);
    return m;
}

bool has_shard_header(const std::uint8_t* data, std::size_t size) {
    if (size < kShardHeaderBytes) return false;
    std::int32_t head[2];
    std::memcpy(head, data, sizeof(head));
    return (head[0] == kShardMagic && head[1] == kShardVersion) || (head[0] == kShard32Magic && head[1] == kShard32Version);
}

TokenFile::TokenFile(const std::string& path) : file_(path) {
    const std::size_t size = file_.size();
    require(size > 0, path, ": empty token file");
    if (has_shard_header(file_.data(), size)) {
        std::int32_t head[3];
        std::memcpy(head, file_.data(), sizeof head);
        format_ = head[0] == kShard32Magic ? TokenFormat::Shard32 : TokenFormat::Shard;
        const std::uint64_t width = format_ == TokenFormat::Shard32 ? 4 : 2, n = std::uint64_t(std::max(head[2], 0));
        require(head[2] >= 0 && std::uint64_t(size) == kShardHeaderBytes + width * n, path, ": shard header says ",
                head[2], " tokens (", kShardHeaderBytes + width * n, " bytes) but the file has ", size, " bytes");
        const std::uint8_t* data = file_.data() + kShardHeaderBytes;
        if (width == 4)
            tokens_ = std::span<const std::uint32_t>(reinterpret_cast<const std::uint32_t*>(data), std::size_t(n));
        else
            tokens_ = std::span<const std::uint16_t>(reinterpret_cast<const std::uint16_t*>(data), std::size_t(n));
    } else {
        require(size % 2 == 0, path, ": size ", size, " bytes is not a whole number of uint16 tokens");
        format_ = TokenFormat::Raw;
        tokens_ = std::span<const std::uint16_t>(reinterpret_cast<const std::uint16_t*>(file_.data()), size / 2);
    }
    require(!tokens_.empty(), path, ": holds no tokens");
}

void TokenFile::check_vocab(int vocab) const {
    for (std::size_t i = 0; i < tokens_.size(); ++i)
        if (tokens_[i] >= std::uint32_t(vocab))
            throw error(path(), ": token ", i, " has id ", tokens_[i], ", outside the vocabulary of ", vocab);
}

void write_token_file(const std::string& path, TokenSpan tokens, TokenFormat format) {
    const std::uint32_t limit = max_token_id(format);
    for (std::size_t i = 0; i < tokens.size(); ++i)
        require(tokens[i] <= limit, path, ": token ", i, " has id ", tokens[i], ", more than ",
                token_format_name(format), " files store (", limit, "); use --format shard32");
    AtomicWriter w(path);
    if (format != TokenFormat::Raw) {
        require(tokens.size() <= std::size_t(INT32_MAX), path, ": ", tokens.size(),
                " tokens do not fit a shard header's int32 count");
        std::int32_t header[256] = {};
        header[0] = format == TokenFormat::Shard32 ? kShard32Magic : kShardMagic;
        header[1] = format == TokenFormat::Shard32 ? kShard32Version : kShardVersion;
        header[2] = static_cast<std::int32_t>(tokens.size());
        w.write(header, sizeof(header));
    }
    // In blocks of the file's width, whatever the width in memory.
    std::vector<std::uint16_t> narrow;
    std::vector<std::uint32_t> wide;
    constexpr std::size_t kBlock = 1 << 16;
    for (std::size_t at = 0; at < tokens.size(); at += kBlock) {
        const std::size_t n = std::min(kBlock, tokens.size() - at);
        if (format == TokenFormat::Shard32) {
            wide.resize(n);
            for (std::size_t i = 0; i < n; ++i) wide[i] = tokens[at + i];
            w.write(wide.data(), n * 4);
        } else {
            narrow.resize(n);
            for (std::size_t i = 0; i < n; ++i) narrow[i] = std::uint16_t(tokens[at + i]);
            w.write(narrow.data(), n * 2);
        }
    }
    w.commit();
}

TokenSplit split_train_val(std::size_t n_tokens, double train_fraction) {
    TokenSplit s;
    s.train_tokens = static_cast<std::size_t>(double(n_tokens) * train_fraction);
    s.val_start = s.train_tokens;
    s.val_tokens = n_tokens - s.train_tokens;
    return s;
}

}  // namespace ane
