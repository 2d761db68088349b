#pragma once
// BLZT checkpoints (spec/checkpoint.md): AutoANE's v4 read and written byte for byte,
// maderix's v2/v3 read; plus our optional trailer after the v4 body (docs/checkpoint-trailer.md)
// carrying what BLZT cannot: the full config, an untied classifier, a tokenizer, metadata.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ane/mezo/lora.hpp"
#include "ane/weights.hpp"

namespace ane {

constexpr std::int32_t kBlztMagic = 0x424C5A54;
constexpr std::size_t kBlztHeaderBytes = 96;

// The header fields that describe a run rather than the model.
struct TrainState {
    std::int32_t step = 0;
    std::int32_t total_steps = 10000;
    float lr = 3e-4f;
    float loss = 0.0f;
    double cum_compile_ms = 0.0;
    double cum_train_ms = 0.0;
    double cum_wall_ms = 0.0;
    std::int32_t cum_steps = 0;
    std::int32_t cum_batches = 0;
    std::int32_t adam_t = 0;
};

struct AdamMoments {
    Weights m, v;
    static AdamMoments zeros(const ModelConfig& config) { return {Weights::zeros(config), Weights::zeros(config)}; }
};

struct Checkpoint {
    Weights weights;
    std::optional<AdamMoments> adam;     // absent: written as zeros
    TrainState state;
    nlohmann::json metadata = nlohmann::json::object();  // free-form, kept in the trailer
    std::vector<std::uint8_t> tokenizer_model;           // a SentencePiece model, kept in the trailer
    std::vector<std::uint8_t> tokenizer_gguf;            // a vocabulary-only GGUF (from a GGUF source)
    std::vector<std::uint8_t> tokenizer_json;            // a Hugging Face tokenizer.json (from an HF source)
    std::vector<std::uint8_t> tokenizer_config_json;     // and its tokenizer_config.json (eos, chat template)
    // LoRA adapters over the (unmerged) weights, and the optimizer moments of a backprop-LoRA
    // run keyed "m.<tensor>" / "v.<tensor>" (adapters and RMS gains); both in the trailer.
    std::optional<Lora> lora;
    std::map<std::string, Tensor> lora_adam;
    // Filled by the reader: the BLZT version read and whether a trailer was present.
    int source_version = 4;
    bool had_trailer = false;
};

// The embedded tokenizer files, by the names they carry in a trailer, an artifact or an HF folder.
std::vector<std::pair<std::string, std::vector<std::uint8_t>*>> tokenizer_files(Checkpoint& ck);
std::vector<std::pair<std::string, const std::vector<std::uint8_t>*>> tokenizer_files(const Checkpoint& ck);

struct BlztReadOptions {
    bool load_moments = false;  // Adam moments are 2/3 of the file; skip them unless resuming
};

// The 96-byte header as stored (spec §1), exposed for `info` and tests.
struct BlztHeader {
    std::int32_t magic, version, step, total_steps, n_layers, vocab_size, dim, hidden_dim, n_heads, seq_len;
    float lr, loss;
    double cum_compile, cum_train, cum_wall;
    std::int32_t cum_steps, cum_batches, adam_t, kv_heads, head_dim, q_dim;
};
static_assert(sizeof(BlztHeader) == kBlztHeaderBytes);

// Size of the v2/v3/v4 body (header included, trailer excluded) for a config.
std::uint64_t blzt_body_bytes(const ModelConfig& c);

bool looks_like_blzt(const std::uint8_t* data, std::size_t size);
Checkpoint read_blzt(const std::string& path, const BlztReadOptions& options = {});
// Always writes version 4 and the trailer; atomic (path.tmp, fsync, rename).
void write_blzt(const Checkpoint& ckpt, const std::string& path);

}  // namespace ane
