#include "test_util.hpp"

#include <cstdlib>
#include <stdexcept>

#include "ane/config.hpp"
#include "ane/file_io.hpp"
#include "ane/token_file.hpp"
#include "ane/tokenizer.hpp"
#include "ane/train/trainer.hpp"

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

TokenCorpus::TokenCorpus(const std::string& text, std::size_t bytes) {
    const std::string tok = shared_data("stories260K-llama2c/tok512.bin");
    if (!std::filesystem::exists(text) || !std::filesystem::exists(tok)) return;
    auto b = read_bytes(text);
    if (bytes && b.size() > bytes) b.resize(bytes);
    write_bytes(dir.path("text.txt"), b);
    train = dir.path("train.bin");
    val = dir.path("val.bin");
    const auto r = run(std::string(ANE_CONVERT_BIN) + " -q tokens -t " + tok + " -o " + train +
                       " --val-fraction 0.1 --val-output " + val + " " + dir.path("text.txt"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ready = r.exit_code == 0;
}

double report_value(const std::string& report, const std::string& key) {
    const auto at = ("\n" + report).find("\n" + key + ": ");
    if (at == std::string::npos) throw std::runtime_error("no '" + key + "' in:\n" + report);
    return std::atof(report.c_str() + at + key.size() + 2);
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

std::vector<std::uint16_t> phrase_tokens(std::size_t n, unsigned seed) {
    const std::vector<std::vector<std::uint16_t>> phrases = {{1, 2, 3, 4, 5}, {6, 7, 8}, {9, 10, 11, 12}, {13, 2, 14}};
    std::vector<std::uint16_t> t;
    std::uint32_t x = seed;
    while (t.size() < n) {
        x = x * 1664525u + 1013904223u;  // the high bits of this LCG are the random ones
        const auto& p = phrases[(x >> 24) % phrases.size()];
        t.insert(t.end(), p.begin(), p.end());
    }
    t.resize(n);
    return t;
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

std::vector<std::string> text_model_inputs() {
    return {shared_data("corpus-tinystories-excerpt/tinystories_train_head.txt"),
            shared_data("tokenizer-fineweb-sp1024/fineweb_1024_bpe.model")};
}

TextModel train_text_model(const TempDir& dir, const ModelConfig& config, int steps, float lr, int threads) {
    const auto inputs = text_model_inputs();
    TextModel out;
    const auto tok = load_tokenizer(inputs[1]);
    for (int id : tok->encode(read_text_file(inputs[0]))) out.ids.push_back(std::uint16_t(id));
    write_token_file(dir.path("tokens.bin"), out.ids, TokenFormat::Raw);
    ModelConfig c = config;
    c.vocab = 1024;
    c.residual_scale = deepnet_residual_scale(c.layers);
    save_config_json(c, dir.path("text-model.json"));
    TrainOptions o;
    o.config_path = dir.path("text-model.json");
    o.data = dir.path("tokens.bin");
    o.output = dir.path("text-model.bin");
    o.steps = steps;
    o.batch = 8;
    o.lr = lr;
    o.warmup = std::max(1, steps / 15);
    o.eval_every = 0;
    o.full_vocab = true;
    o.threads = threads;
    const std::atomic<bool> no_stop{false};
    train(o, {}, no_stop);
    out.ck = read_blzt(o.output);
    return out;
}

}  // namespace ane::test
