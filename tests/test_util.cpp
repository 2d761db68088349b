#include "test_util.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace ane::test {

std::string shared_data(const std::string& relative) {
    const char* env = std::getenv("ANE_SHARED_DATA");
    return std::string(env ? env : ANE_SHARED_DATA) + "/" + relative;
}

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "anetest.XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

RunResult run(const std::string& command) {
    TempDir dir;
    const std::string out = dir.path("out"), err = dir.path("err");
    const std::string full = "(" + command + ") >" + out + " 2>" + err + " </dev/null";
    const int status = std::system(full.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    auto slurp = [](const std::string& p) {
        std::ifstream in(p);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    };
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

ModelConfig tiny_config(bool tied) {
    ModelConfig c;
    c.name = "tiny";
    c.dim = 8;
    c.hidden = 12;
    c.heads = 4;
    c.kv_heads = 2;
    c.head_dim = 4;
    c.seq = 16;
    c.layers = 2;
    c.vocab = 11;
    c.rope_theta = 5e4;
    c.norm_eps = 1e-6;
    c.tied = tied;
    c.residual_scale = 0.5;
    return c;
}

Weights random_weights(const ModelConfig& c, unsigned seed) {
    Weights w = Weights::zeros(c);
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    w.for_each([&](const std::string&, Tensor& t) {
        for (auto& x : t.span()) x = dist(rng);
    });
    return w;
}

}  // namespace ane::test
