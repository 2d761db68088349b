#include "ane/tokenizer.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "ane/bpe_tokenizer.hpp"
#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/model_file.hpp"
#include "ane/model_tokenizer.hpp"
#include "ane/score_tokenizer.hpp"

namespace ane {

namespace {
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 '▁'
}

ByteCounter::ByteCounter(const Tokenizer& tok, int table_size) {
    const int n = tok.vocab_size();
    const int size = std::max(n, table_size);
    base_bytes_.assign(size, 0);
    leading_space_.assign(size, 0);
    boundary_.assign(size, 1);
    for (int id = 0; id < n; ++id) {
        const TokenKind k = tok.kind(id);
        if (k == TokenKind::Control || k == TokenKind::Unknown || k == TokenKind::Unused) continue;
        boundary_[id] = 0;
        if (k == TokenKind::Byte) {
            base_bytes_[id] = 1;
            continue;
        }
        if (tok.byte_level()) {  // the UTF-8 bytes the token decodes to; spaces are inside them
            base_bytes_[id] = static_cast<std::int16_t>(tok.decode(std::vector<int>{id}).size());
            continue;
        }
        std::string p = tok.piece(id);
        if (p.starts_with(kSpaceMarker)) {
            leading_space_[id] = 1;
            p.erase(0, kSpaceMarker.size());
        }
        base_bytes_[id] = static_cast<std::int16_t>(p.size());
    }
}

std::int64_t ByteCounter::count(std::span<const int> ids, int prev) const {
    std::int64_t total = 0;
    for (int id : ids) {
        require(id >= 0 && id < table_size(), "token id ", id, " is outside the tokenizer's ", table_size(), " ids");
        total += bytes(prev, id);
        prev = id;
    }
    return total;
}

std::string Tokenizer::token_text(int prev, int id) const {
    // Decoding the pair and removing the previous token's text keeps SentencePiece's own
    // handling of spaces and byte pieces. Ids past the vocabulary (embedding padding) print nothing.
    if (id < 0 || id >= vocab_size()) return "";
    if (prev < 0 || prev >= vocab_size()) return decode(std::vector<int>{id});
    const std::string both = decode(std::vector<int>{prev, id});
    const std::string first = decode(std::vector<int>{prev});
    return both.compare(0, first.size(), first) == 0 ? both.substr(first.size()) : decode(std::vector<int>{id});
}

bool Tokenizer::adds_space_prefix() const {
    const std::vector<int> ids = encode("a");
    return !ids.empty() && (piece(ids.front()).starts_with(kSpaceMarker) || piece(ids.front()) == "<0x20>");
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
    // A model file: the tokenizer it carries.
    const FileKind kind = detect_file_kind(path);
    if (kind == FileKind::Blzt || kind == FileKind::Artifact || kind == FileKind::HuggingFace) {
        auto tok = embedded_tokenizer(load_model(path), path);
        require(tok != nullptr, path, ": this model carries no tokenizer");
        return tok;
    }
    const MappedFile file(path);
    const auto bytes = file.bytes();
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return tokenizer_from_gguf(GgufFile(path));
    const auto first = std::find_if(bytes.begin(), bytes.end(), [](auto c) { return !std::isspace(int(c)); });
    if (first != bytes.end() && *first == '{') return load_hf_tokenizer(path);
    // llama2.c's tokenizer.bin opens with a small int32; a SentencePiece protobuf with field 1 (0x0A).
    std::int32_t head = 0;
    if (bytes.size() >= 4) std::memcpy(&head, bytes.data(), 4);
    if (bytes.size() >= 4 && bytes[0] != 0x0A && head > 0 && head < 4096) return load_llama2c_tokenizer(path);
    return load_sentencepiece(path);
}

}  // namespace ane
