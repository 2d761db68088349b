// Serialized SentencePiece models (the .model file, and the one a checkpoint embeds).
#include "ane/tokenizer.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ane::fuzz::expect_clean([&] {
        const auto tok = ane::sentencepiece_from_bytes(
            std::string_view(reinterpret_cast<const char*>(data), size), "fuzz input");
        const auto ids = tok->encode("Once upon a time, 42 cats.");
        for (int id : ids) tok->token_text(-1, id);
        const ane::ByteCounter bytes(*tok);
        bytes.count(ids, -1);
    });
    return 0;
}
