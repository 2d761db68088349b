// The SentencePiece implementation of Tokenizer, on Debian's libsentencepiece.
#include <sentencepiece_processor.h>

#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/tokenizer.hpp"

namespace ane {

namespace {

class SentencePieceTokenizer final : public Tokenizer {
public:
    SentencePieceTokenizer(std::string_view serialized, const std::string& origin) : origin_(origin) {
        const auto status = sp_.LoadFromSerializedProto(serialized);
        if (!status.ok()) throw error(origin, ": not a SentencePiece model (", status.ToString(), ")");
    }

    int vocab_size() const override { return sp_.GetPieceSize(); }

    std::vector<int> encode(std::string_view text) const override {
        std::vector<int> ids;
        const auto status = sp_.Encode(text, &ids);
        if (!status.ok()) throw error(origin_, ": encoding failed: ", status.ToString());
        return ids;
    }

    std::string decode(std::span<const int> ids) const override {
        std::vector<int> v(ids.begin(), ids.end());
        for (int id : v) require(id >= 0 && id < vocab_size(), origin_, ": cannot decode id ", id);
        std::string out;
        const auto status = sp_.Decode(v, &out);
        if (!status.ok()) throw error(origin_, ": decoding failed: ", status.ToString());
        return out;
    }

    std::string piece(int id) const override { return sp_.IdToPiece(id); }

    TokenKind kind(int id) const override {
        if (sp_.IsControl(id)) return TokenKind::Control;
        if (sp_.IsUnknown(id)) return TokenKind::Unknown;
        if (sp_.IsUnused(id)) return TokenKind::Unused;
        if (sp_.IsByte(id)) return TokenKind::Byte;
        return TokenKind::Normal;
    }

    float score(int id) const override { return sp_.GetScore(id); }

    int bos_id() const override { return sp_.bos_id(); }
    int eos_id() const override { return sp_.eos_id(); }

    std::string describe() const override {
        return "SentencePiece model, " + std::to_string(vocab_size()) + " tokens";
    }

private:
    sentencepiece::SentencePieceProcessor sp_;
    std::string origin_;
};

}  // namespace

std::unique_ptr<Tokenizer> sentencepiece_from_bytes(std::string_view serialized, const std::string& origin) {
    try {
        return std::make_unique<SentencePieceTokenizer>(serialized, origin);
    } catch (const Error&) {
        throw;
    } catch (const std::exception& e) {  // libsentencepiece's own (Darts' trie on a zero-length piece)
        throw error(origin, ": not a usable SentencePiece model: ", e.what());
    }
}

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path) {
    const std::string bytes = read_text_file(path);
    require(!bytes.empty(), path, ": empty tokenizer file");
    return sentencepiece_from_bytes(bytes, path);
}

}  // namespace ane
