#pragma once
// What kind of file a path holds, decided by content, and loading any model file the suite
// reads into canonical weights.
#include <string>

#include "ane/checkpoint.hpp"

namespace ane {

enum class FileKind { Blzt, Llama2c, Gguf, HuggingFace, Artifact, TokenShard, TokenRaw, Unknown };
const char* file_kind_name(FileKind kind);

// BLZT and GGUF by magic, Hugging Face by a folder, a safetensors header or an index.json,
// a token shard by its header, llama2.c by an exactly matching size;
// anything else of even size could be raw uint16 tokens (they have no header).
FileKind detect_file_kind(const std::string& path);

struct LoadOptions {
    bool load_moments = false;
    // A checkpoint with LoRA adapters yields the weights with the adapters folded in.
    bool merge_lora = true;
};

// A checkpoint from any model format; formats without run state get a default TrainState.
Checkpoint load_model(const std::string& path, const LoadOptions& options = {});

}  // namespace ane
