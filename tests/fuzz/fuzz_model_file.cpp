// Every model format through the content sniffing every tool uses (adapters folded in), and
// as ane-generate / ane-eval load it (encoded matrices kept, re-encoded as Q4_0).
#include "ane/model/inference_weights.hpp"
#include "ane/model_file.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] { ane::load_model(f.path()); });
    ane::fuzz::expect_clean([&] { ane::load_inference_model(f.path(), std::nullopt); });
    ane::fuzz::expect_clean([&] { ane::load_inference_model(f.path(), ane::ggml::Type::Q4_0); });
    return 0;
}
