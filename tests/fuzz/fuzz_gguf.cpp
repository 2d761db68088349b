// GGUF: header, metadata, tensor infos, the llama model and its vocabulary.
#include "ane/formats/gguf.hpp"
#include "ane/score_tokenizer.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] {
        const ane::GgufFile g(f.path());
        ane::fuzz::expect_clean([&] { ane::gguf_tokenizer_metadata(g); });
        ane::fuzz::expect_clean([&] {
            const auto tok = ane::tokenizer_from_gguf(g);
            const auto ids = tok->encode("Once upon a time, 42 cats.");
            for (int id : ids) tok->token_text(-1, id);
            tok->decode(ids);
        });
    });
    ane::fuzz::expect_clean([&] { ane::read_gguf_model(f.path()); });
    ane::fuzz::expect_clean([&] {
        std::map<std::string, ane::QuantMatrix> kept;  // encoded matrices kept for inference
        ane::read_gguf_model(f.path(), &kept);
    });
    return 0;
}
