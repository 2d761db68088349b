// int8 + zlib/zstd artifacts.
#include "ane/formats/artifact.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] { ane::read_artifact(f.path()); });
    return 0;
}
