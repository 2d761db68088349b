// A Hugging Face folder whose config.json (first half of the input) and
// model.safetensors.index.json (second half, split at the first NUL) are fuzzed, beside a
// valid model.safetensors of a tiny Llama.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "ane/checkpoint.hpp"
#include "ane/formats/safetensors.hpp"
#include "fuzz_util.hpp"

namespace {

// The folder lives as long as the process, and goes with it when the run ends normally.
struct Folder {
    std::string path;
    ~Folder() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

std::string folder() {
    static const Folder dir{[] {
        const std::string d = std::filesystem::temp_directory_path() / ("ane-fuzz-hf-" + std::to_string(::getpid()));
        ane::ModelConfig c;
        c.dim = 8;
        c.hidden = 12;
        c.heads = 2;
        c.kv_heads = 1;
        c.head_dim = 4;
        c.seq = 16;
        c.layers = 1;
        c.vocab = 16;
        ane::Checkpoint ck;
        ck.weights = ane::Weights::zeros(c);
        ane::write_hf_model(ck, d, ane::HfDtype::F16);
        return d;
    }()};
    return dir.path;
}

void write(const std::string& path, const std::uint8_t* p, std::size_t n) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(p), std::streamsize(n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string dir = folder();
    const std::uint8_t* nul = std::find(data, data + size, std::uint8_t(0));
    write(dir + "/config.json", data, std::size_t(nul - data));
    const std::string index = dir + "/model.safetensors.index.json";
    if (nul != data + size) {
        write(index, nul + 1, std::size_t(data + size - nul - 1));
    } else {
        std::filesystem::remove(index);
    }
    ane::fuzz::expect_clean([&] { ane::read_hf_model(dir); });
    return 0;
}
