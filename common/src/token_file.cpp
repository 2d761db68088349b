#include "ane/token_file.hpp"

#include <algorithm>
#include <cstring>

#include "ane/error.hpp"

namespace ane {

const char* token_format_name(TokenFormat f) { return f == TokenFormat::Raw ? "raw" : "shard"; }

TokenFormat parse_token_format(const std::string& name) {
    if (name == "raw") return TokenFormat::Raw;
    if (name == "shard") return TokenFormat::Shard;
    throw error("unknown token format '", name, "' (expected raw or shard)");
}

bool has_shard_header(const std::uint8_t* data, std::size_t size) {
    if (size < kShardHeaderBytes) return false;
    std::int32_t head[2];
    std::memcpy(head, data, sizeof(head));
    return head[0] == kShardMagic && head[1] == kShardVersion;
}

TokenFile::TokenFile(const std::string& path) : file_(path) {
    const std::size_t size = file_.size();
    require(size > 0, path, ": empty token file");
    if (has_shard_header(file_.data(), size)) {
        std::int32_t n = 0;
        std::memcpy(&n, file_.data() + 8, 4);
        require(n >= 0 && std::uint64_t(size) == kShardHeaderBytes + 2 * std::uint64_t(n), path,
                ": shard header says ", n, " tokens (", kShardHeaderBytes + 2 * std::uint64_t(std::max(n, 0)),
                " bytes) but the file has ", size, " bytes");
        format_ = TokenFormat::Shard;
        count_ = std::size_t(n);
        tokens_ = reinterpret_cast<const std::uint16_t*>(file_.data() + kShardHeaderBytes);
    } else {
        require(size % 2 == 0, path, ": size ", size, " bytes is not a whole number of uint16 tokens");
        format_ = TokenFormat::Raw;
        count_ = size / 2;
        tokens_ = reinterpret_cast<const std::uint16_t*>(file_.data());
    }
    require(count_ > 0, path, ": holds no tokens");
}

void TokenFile::check_vocab(int vocab) const {
    for (std::size_t i = 0; i < count_; ++i)
        if (tokens_[i] >= vocab)
            throw error(path(), ": token ", i, " has id ", tokens_[i], ", outside the vocabulary of ", vocab);
}

std::uint16_t TokenFile::max_id() const { return *std::max_element(tokens_, tokens_ + count_); }

void write_token_file(const std::string& path, std::span<const std::uint16_t> tokens, TokenFormat format) {
    AtomicWriter w(path);
    if (format == TokenFormat::Shard) {
        require(tokens.size() <= std::size_t(INT32_MAX), path, ": ", tokens.size(),
                " tokens do not fit a shard header's int32 count");
        std::int32_t header[256] = {};
        header[0] = kShardMagic;
        header[1] = kShardVersion;
        header[2] = static_cast<std::int32_t>(tokens.size());
        w.write(header, sizeof(header));
    }
    w.write(tokens.data(), tokens.size_bytes());
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
