// A safetensors file: header JSON, tensor ranges, dtypes.
#include "ane/formats/safetensors.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] {
        const ane::SafetensorsFile st(f.path());
        for (const auto& t : st.tensors()) ane::fuzz::expect_clean([&] { st.read(t); });
    });
    return 0;
}
