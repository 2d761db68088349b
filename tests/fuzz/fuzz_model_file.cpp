// Every model format through the content sniffing every tool uses (adapters folded in).
#include "ane/model_file.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] { ane::load_model(f.path()); });
    return 0;
}
