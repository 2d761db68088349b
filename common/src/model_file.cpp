#include "ane/model_file.hpp"

#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/artifact.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/formats/safetensors.hpp"

#include <filesystem>
#include "ane/llama2c.hpp"
#include "ane/token_file.hpp"

namespace ane {

const char* file_kind_name(FileKind kind) {
    switch (kind) {
        case FileKind::Blzt: return "blzt";
        case FileKind::Llama2c: return "llama2c";
        case FileKind::Gguf: return "gguf";
        case FileKind::HuggingFace: return "hf";
        case FileKind::Artifact: return "artifact";
        case FileKind::TokenShard: return "tokens-shard";
        case FileKind::TokenRaw: return "tokens-raw";
        case FileKind::Unknown: break;
    }
    return "unknown";
}

FileKind detect_file_kind(const std::string& path) {
    if (std::filesystem::is_directory(path) || path.ends_with(".safetensors.index.json")) return FileKind::HuggingFace;
    MappedFile f(path);
    if (looks_like_blzt(f.data(), f.size())) return FileKind::Blzt;
    if (looks_like_gguf(f.data(), f.size())) return FileKind::Gguf;
    if (looks_like_artifact(f.data(), f.size())) return FileKind::Artifact;
    if (looks_like_safetensors(f.data(), f.size())) return FileKind::HuggingFace;
    if (has_shard_header(f.data(), f.size())) return FileKind::TokenShard;
    if (looks_like_llama2c(f.data(), f.size())) return FileKind::Llama2c;
    if (f.size() > 0 && f.size() % 2 == 0) return FileKind::TokenRaw;
    return FileKind::Unknown;
}

namespace {

// Formats without optimizer state: the weights only.
Checkpoint read_weights_only(const std::string& path, FileKind kind) {
    switch (kind) {
        case FileKind::Llama2c: {
            Checkpoint ck;
            ck.weights = read_llama2c(path);
            ck.source_version = 0;
            return ck;
        }
        case FileKind::Gguf: return read_gguf_model(path);
        case FileKind::Artifact: return read_artifact(path);
        case FileKind::HuggingFace: return read_hf_model(path);
        case FileKind::TokenShard: throw error(path, ": is a token file, not a model");
        default: break;
    }
    throw error(path, ": not a model file the suite reads (not BLZT, GGUF, an artifact or Hugging Face, and its size "
                      "matches no llama2.c model)");
}

}  // namespace

Checkpoint load_model(const std::string& path, const LoadOptions& options) {
    const FileKind kind = detect_file_kind(path);
    if (kind == FileKind::Blzt) {
        Checkpoint ck = read_blzt(path, {options.load_moments});
        if (ck.lora && options.merge_lora) {
            merge_lora(ck.weights, *ck.lora);
            ck.lora.reset();
            ck.lora_adam.clear();
        }
        return ck;
    }
    Checkpoint ck = read_weights_only(path, kind);
    if (options.load_moments) ck.adam = AdamMoments::zeros(ck.weights.config);
    return ck;
}

}  // namespace ane
