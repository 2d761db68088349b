// Token files: raw uint16 and the shard with its header.
#include "ane/token_file.hpp"
#include "ane/vocab_map.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const ane::fuzz::InputFile f(data, size);
    ane::fuzz::expect_clean([&] {
        const ane::TokenFile t(f.path());
        t.max_id();
        ane::fuzz::expect_clean([&] { t.check_vocab(512); });
        ane::VocabMap::build(t.tokens(), 65536);
    });
    return 0;
}
