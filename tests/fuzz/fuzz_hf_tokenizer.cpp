// Hugging Face tokenizer.json files (byte-level BPE): parsed, then a text with an added token
// encoded, decoded and its bytes counted.
#include "ane/bpe_tokenizer.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ane::fuzz::expect_clean([&] {
        const auto tok = ane::hf_tokenizer_from_json(std::string(reinterpret_cast<const char*>(data), size),
                                                     "", "fuzz input");
        const auto ids = tok->encode("Once upon a <|x|> time, 42 caf\xC3\xA9s \xE4\xBD\xA0\xE5\xA5\xBD!\n\n");
        tok->decode(ids);
        for (int id : ids) tok->token_text(-1, id);
        const ane::ByteCounter bytes(*tok);
        bytes.count(ids, -1);
    });
    return 0;
}
