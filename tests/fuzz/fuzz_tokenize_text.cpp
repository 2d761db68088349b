// Arbitrary bytes as text through every kind of tokenizer, then decoded and byte-counted.
#include <memory>
#include <vector>

#include "ane/formats/gguf.hpp"
#include "ane/score_tokenizer.hpp"
#include "ane/tokenizer.hpp"
#include "fuzz_util.hpp"

namespace {
struct Loaded {
    std::unique_ptr<ane::Tokenizer> tok;
    std::unique_ptr<ane::ByteCounter> bytes;
};
const std::vector<Loaded>& tokenizers() {
    static const auto all = [] {
        std::vector<Loaded> v;
        for (const char* rel : {"stories260K-llama2c/tok512.bin", "tokenizer-fineweb-sp1024/fineweb_1024_bpe.model",
                                "stories260K-gguf/stories260K.gguf", "tokenizer-llama2-sentencepiece/tokenizer.model"}) {
            try {
                auto tok = ane::load_tokenizer(ane::fuzz::shared_data(rel));
                auto bytes = std::make_unique<ane::ByteCounter>(*tok);
                v.push_back({std::move(tok), std::move(bytes)});
            } catch (const ane::Error&) {
                // absent: fuzz the others
            }
        }
        return v;
    }();
    return all;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    for (const auto& [tok, bytes] : tokenizers()) {
        const std::vector<int> ids = tok->encode(text);
        int prev = -1;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const int id = ids[i];
            if (id < 0 || id >= tok->vocab_size()) std::abort();
            if (i < 64) tok->token_text(prev, id);  // decoding pairs is slow; the first ids suffice
            prev = id;
        }
        tok->decode(ids);
        bytes->count(ids, -1);
    }
    return 0;
}
