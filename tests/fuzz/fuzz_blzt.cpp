// BLZT checkpoints (v2, v3, v4) and the anetrain trailer, with and without moments.
#include "ane/checkpoint.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] { ane::read_blzt(f.path()); });
    ane::fuzz::expect_clean([&] { ane::read_blzt(f.path(), {.load_moments = true}); });
    return 0;
}
