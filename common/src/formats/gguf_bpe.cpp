// GGUF vocabularies of type `gpt2` (byte-level BPE: tokens, merges, tokenizer.ggml.pre), read
// as llama.cpp tokenizes with them, and written from a byte-level BPE tokenizer.
#include "ane/bpe_tokenizer.hpp"
#include "ane/error.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/gguf_tokenizer.hpp"

namespace ane {

std::unique_ptr<Tokenizer> bpe_tokenizer_from_gguf(const GgufFile& f) {
    const auto strings = [&](const char* key) {
        const GgufValue* v = f.find(key);
        require(v && v->type == GgufValueType::ARRAY && v->elem_type == GgufValueType::STRING, f.path(), ": no ", key);
        return v;
    };
    const GgufValue* tokens = strings("tokenizer.ggml.tokens");
    const GgufValue* merges = strings("tokenizer.ggml.merges");
    const GgufValue* pre = f.find("tokenizer.ggml.pre");
    BpeVocabulary v;
    v.split_patterns = split_patterns_of_llama_cpp_pre(pre && pre->type == GgufValueType::STRING ? pre->s : "default");
    // llama.cpp takes a piece that is a token whole for Llama 3, as its tokenizer.json says.
    v.ignore_merges = llama_cpp_pre_of(v.split_patterns) == "llama-bpe";
    const std::size_t n = tokens->array.size();
    require(n > 0 && n <= (1u << 24), f.path(), ": a vocabulary of ", n, " tokens");
    v.kinds.assign(n, TokenKind::Normal);
    for (const auto& t : tokens->array) v.pieces.push_back(t.s);
    const GgufValue* types = f.find("tokenizer.ggml.token_type");
    for (std::size_t id = 0; types && id < n && id < types->array.size(); ++id) {
        const int type = gguf_token_type(types->array[id]);
        if (type == kGgufControl || type == kGgufUserDefined) {  // matched in the text before BPE
            v.kinds[id] = type == kGgufControl ? TokenKind::Control : TokenKind::Normal;
            if (!v.pieces[id].empty()) v.added.push_back({v.pieces[id], int(id), type == kGgufControl});
        } else if (type == kGgufUnknown) {
            v.kinds[id] = TokenKind::Unknown;
        } else if (type == kGgufUnused) {
            v.kinds[id] = TokenKind::Unused;
        }
    }
    for (const auto& m : merges->array) {
        const auto space = m.s.find(' ', 1);
        require(space != std::string::npos, f.path(), ": merge \"", m.s, "\" is not two tokens");
        v.merges.emplace_back(m.s.substr(0, space), m.s.substr(space + 1));
    }
    const GgufValue* add_bos = f.find("tokenizer.ggml.add_bos_token");
    if (add_bos && add_bos->u != 0) v.bos = gguf_token_id(f, "tokenizer.ggml.bos_token_id", n);
    v.eos = gguf_token_id(f, "tokenizer.ggml.eos_token_id", n);
    return make_bpe_tokenizer(std::move(v), f.path());
}

std::vector<std::pair<std::string, GgufValue>> gguf_metadata_from_bpe(const BpeVocabulary& v, int rows) {
    const std::string pre = llama_cpp_pre_of(v.split_patterns);
    require(!pre.empty(), "this tokenizer's pre-tokenizer has no llama.cpp name (llama.cpp knows gpt-2, llama-bpe, "
                          "qwen2, smollm among those this suite runs); it cannot be written to GGUF");
    std::vector<GgufValue> tokens, types, merges;
    for (std::size_t id = 0; id < v.pieces.size(); ++id) {
        tokens.push_back(GgufValue::of_string(v.pieces[id]));
        int type = kGgufNormal;
        if (v.kinds[id] == TokenKind::Unknown) type = kGgufUnknown;
        else if (v.kinds[id] == TokenKind::Unused) type = kGgufUnused;
        types.push_back(GgufValue::of_i32(type));
    }
    for (const auto& a : v.added) types[std::size_t(a.id)] = GgufValue::of_i32(a.special ? kGgufControl : kGgufUserDefined);
    for (int id = int(v.pieces.size()); id < rows; ++id) {
        tokens.push_back(GgufValue::of_string("[PAD" + std::to_string(id) + "]"));
        types.push_back(GgufValue::of_i32(kGgufUnused));
    }
    for (const auto& [a, b] : v.merges) merges.push_back(GgufValue::of_string(a + " " + b));
    std::vector<std::pair<std::string, GgufValue>> kv = {
        {"tokenizer.ggml.model", GgufValue::of_string("gpt2")},
        {"tokenizer.ggml.pre", GgufValue::of_string(pre)},
        {"tokenizer.ggml.tokens", GgufValue::of_array(GgufValueType::STRING, std::move(tokens))},
        {"tokenizer.ggml.token_type", GgufValue::of_array(GgufValueType::I32, std::move(types))},
        {"tokenizer.ggml.merges", GgufValue::of_array(GgufValueType::STRING, std::move(merges))},
        {"tokenizer.ggml.add_bos_token", GgufValue::of_bool(v.bos >= 0)},
        {"tokenizer.ggml.add_eos_token", GgufValue::of_bool(false)},
        {"tokenizer.ggml.add_space_prefix", GgufValue::of_bool(v.add_prefix_space)},
    };
    if (v.bos >= 0) kv.push_back({"tokenizer.ggml.bos_token_id", GgufValue::of_u32(std::uint32_t(v.bos))});
    if (v.eos >= 0) kv.push_back({"tokenizer.ggml.eos_token_id", GgufValue::of_u32(std::uint32_t(v.eos))});
    if (v.unk >= 0) kv.push_back({"tokenizer.ggml.unknown_token_id", GgufValue::of_u32(std::uint32_t(v.unk))});
    return kv;
}

}  // namespace ane
