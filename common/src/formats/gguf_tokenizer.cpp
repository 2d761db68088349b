#include "ane/formats/gguf_tokenizer.hpp"

#include "ane/bpe_tokenizer.hpp"

namespace ane {

std::vector<std::pair<std::string, GgufValue>> gguf_metadata_from_tokenizer(const Tokenizer& tok, int rows) {
    if (const BpeVocabulary* bpe = tok.bpe_vocabulary()) return gguf_metadata_from_bpe(*bpe, rows);
    const int n = tok.vocab_size();
    std::vector<GgufValue> tokens, scores, types;
    tokens.reserve(n);
    scores.reserve(n);
    types.reserve(n);
    for (int id = 0; id < n; ++id) {
        tokens.push_back(GgufValue::of_string(tok.piece(id)));
        scores.push_back(GgufValue::of_f32(tok.score(id)));
        // llama.cpp's token types: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte.
        int type = 1;
        switch (tok.kind(id)) {
            case TokenKind::Normal: type = 1; break;
            case TokenKind::Unknown: type = 2; break;
            case TokenKind::Control: type = 3; break;
            case TokenKind::Unused: type = 5; break;
            case TokenKind::Byte: type = 6; break;
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
