#include "ane/formats/gguf_tokenizer.hpp"

#include "ane/bpe_tokenizer.hpp"

namespace ane {

int gguf_token_type(const GgufValue& entry) {
    const double t = entry.as_double();
    return t >= kGgufNormal && t <= kGgufByte ? int(t) : kGgufNormal;
}

int gguf_token_id(const GgufFile& f, const std::string& key, std::size_t n) {
    const GgufValue* x = f.find(key);
    return x && x->is_integer() && x->as_double() >= 0 && x->as_double() < double(n) ? int(x->as_double()) : -1;
}

std::vector<std::pair<std::string, GgufValue>> gguf_metadata_from_tokenizer(const Tokenizer& tok, int rows) {
    if (const BpeVocabulary* bpe = tok.bpe_vocabulary(); bpe && bpe->byte_level()) return gguf_metadata_from_bpe(*bpe, rows);
    const int n = tok.vocab_size();
    std::vector<GgufValue> tokens, scores, types;
    tokens.reserve(n);
    scores.reserve(n);
    types.reserve(n);
    for (int id = 0; id < n; ++id) {
        tokens.push_back(GgufValue::of_string(tok.piece(id)));
        scores.push_back(GgufValue::of_f32(tok.score(id)));
        int type = kGgufNormal;
        switch (tok.kind(id)) {
            case TokenKind::Normal: type = kGgufNormal; break;
            case TokenKind::Unknown: type = kGgufUnknown; break;
            case TokenKind::Control: type = kGgufControl; break;
            case TokenKind::Unused: type = kGgufUnused; break;
            case TokenKind::Byte: type = kGgufByte; break;
        }
        types.push_back(GgufValue::of_i32(type));
    }
    std::vector<std::pair<std::string, GgufValue>> kv = {
        {"tokenizer.ggml.model", GgufValue::of_string("llama")},
        {"tokenizer.ggml.tokens", GgufValue::of_array(GgufValueType::STRING, std::move(tokens))},
        {"tokenizer.ggml.scores", GgufValue::of_array(GgufValueType::F32, std::move(scores))},
        {"tokenizer.ggml.token_type", GgufValue::of_array(GgufValueType::I32, std::move(types))},
        {"tokenizer.ggml.add_bos_token", GgufValue::of_bool(tok.bos_id() >= 0)},
        {"tokenizer.ggml.add_eos_token", GgufValue::of_bool(false)},
        // llama.cpp assumes a space prefix unless told: parameter-golf's models have none.
        {"tokenizer.ggml.add_space_prefix", GgufValue::of_bool(tok.adds_space_prefix())},
    };
    if (tok.bos_id() >= 0) kv.push_back({"tokenizer.ggml.bos_token_id", GgufValue::of_u32(std::uint32_t(tok.bos_id()))});
    if (tok.eos_id() >= 0) kv.push_back({"tokenizer.ggml.eos_token_id", GgufValue::of_u32(std::uint32_t(tok.eos_id()))});
    for (int id = 0; id < n; ++id)
        if (tok.kind(id) == TokenKind::Unknown) {
            kv.push_back({"tokenizer.ggml.unknown_token_id", GgufValue::of_u32(std::uint32_t(id))});
            break;
        }
    return kv;
}

}  // namespace ane
