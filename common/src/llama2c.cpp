#include "ane/llama2c.hpp"

#include <cstring>
#include <optional>

#include "ane/error.hpp"
#include "ane/file_io.hpp"

namespace ane {

namespace {

struct Llama2cHeader {
    std::int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
};

std::optional<ModelConfig> config_of(const Llama2cHeader& h) {
    // Bounds first: -vocab must not overflow, and products of these stay far from 2^64.
    if (h.dim <= 0 || h.hidden <= 0 || h.layers <= 0 || h.heads <= 0 || h.kv_heads <= 0 || h.vocab == 0 ||
        h.seq <= 0 || h.vocab < -(1 << 22) || h.vocab > (1 << 22) || h.dim > (1 << 16) || h.hidden > (1 << 18) ||
        h.layers > 1024 || h.seq > (1 << 20) || h.heads > 1024 || h.kv_heads > 1024)
        return std::nullopt;
    if (h.dim % h.heads || h.heads % h.kv_heads || (h.dim / h.heads) % 2) return std::nullopt;
    ModelConfig c;
    c.name = "llama2c";
    c.dim = h.dim;
    c.hidden = h.hidden;
    c.layers = h.layers;
    c.heads = h.heads;
    c.kv_heads = h.kv_heads;
    c.head_dim = h.dim / h.heads;
    c.vocab = h.vocab < 0 ? -h.vocab : h.vocab;
    c.seq = h.seq;
    c.tied = h.vocab > 0;
    c.residual_scale = 1.0;
    return c;
}

std::uint64_t expected_size(const ModelConfig& c) {
    const std::uint64_t L = c.layers, D = c.dim, H = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), V = c.vocab;
    std::uint64_t floats = V * D + L * D + L * Q * D + 2 * L * KV * D + L * D * Q + L * D + 3 * L * H * D + D;
    floats += 2 * std::uint64_t(c.seq) * (c.head_dim / 2);  // legacy freq_cis tables
    if (!c.tied) floats += V * D;
    return 28 + 4 * floats;
}

}  // namespace

bool looks_like_llama2c(const std::uint8_t* data, std::size_t size) {
    if (size < 28) return false;
    Llama2cHeader h;
    std::memcpy(&h, data, sizeof(h));
    const auto c = config_of(h);
    if (!c) return false;
    return expected_size(*c) == size;
}

Weights read_llama2c(const std::string& path) {
    MappedFile file(path);
    ByteReader r(file.bytes(), path);
    Llama2cHeader h;
    std::memcpy(&h, r.take(sizeof(h), "the 28-byte llama2.c header"), sizeof(h));
    auto config = config_of(h);
    require(config.has_value(), path, ": not a llama2.c model (implausible header: dim ", h.dim, ", hidden ",
            h.hidden, ", layers ", h.layers, ", heads ", h.heads, ", kv_heads ", h.kv_heads, ", vocab ", h.vocab,
            ", seq ", h.seq, ")");
    const ModelConfig& c = *config;
    c.validate(path);
    const std::uint64_t want = expected_size(c);
    require(file.size() == want, path, ": a llama2.c model with these dimensions has ", want,
            " bytes, the file has ", file.size());

    Weights w = Weights::zeros(c);
    auto read_into = [&](Tensor& t, const char* what) {
        const std::uint8_t* src = r.take(t.bytes(), what);
        std::memcpy(t.data(), src, t.bytes());
        file.release(src, t.bytes());
    };
    read_into(w.embed, "token_embedding");
    // Tensors are grouped by type across layers, in this order.
    const char* order[] = {"rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3"};
    for (const char* name : order)
        for (int l = 0; l < c.layers; ++l) read_into(*w.find("layers." + std::to_string(l) + "." + name), name);
    read_into(w.rms_final, "rms_final");
    r.skip(2 * std::size_t(c.seq) * (c.head_dim / 2) * sizeof(float));
    if (!c.tied) read_into(w.classifier, "wcls");
    return w;
}

}  // namespace ane
