// int8 + zlib/zstd artifacts.
#include "ane/formats/artifact.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] { ane::read_artifact(f.path()); });
    ane::fuzz::expect_clean([&] {
        std::map<std::string, ane::QuantMatrix> kept;  // the int8 rows kept as Q8_0 for inference
        ane::read_artifact(f.path(), &kept);
    });
    return 0;
}
