// llama2.c model files and tokenizer.bin.
#include "ane/llama2c.hpp"
#include "ane/score_tokenizer.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] { ane::read_llama2c(f.path()); });
    ane::fuzz::expect_clean([&] {
        const auto tok = ane::load_llama2c_tokenizer(f.path());
        const auto ids = tok->encode("Once upon a time, 42 cats.");
        tok->decode(ids);
    });
    return 0;
}
