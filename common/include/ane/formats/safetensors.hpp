#pragma once
// safetensors (Hugging Face): an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the data. Sharded checkpoints add
// model.safetensors.index.json. Llama-family folders (config.json) map to the canonical weights.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"

namespace ane {

struct SafetensorInfo {
    std::string name, dtype;  // "F32", "F16", "BF16", ...
    Shape shape;
    std::uint64_t begin = 0, end = 0;  // within the data section
};

class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path);
    const std::string& path() const { return file_.path(); }
    const std::vector<SafetensorInfo>& tensors() const { return tensors_; }
    const SafetensorInfo* find(const std::string& name) const;
    const nlohmann::json& metadata() const { return metadata_; }
    // F32, F16 and BF16 as float32; other dtypes are named in the error.
    Tensor read(const SafetensorInfo& info) const;

private:
    MappedFile file_;
    std::vector<SafetensorInfo> tensors_;
    nlohmann::json metadata_ = nlohmann::json::object();
    const std::uint8_t* data_ = nullptr;
};

bool looks_like_safetensors(const std::uint8_t* data, std::size_t size);

// PATH: a folder with config.json and model.safetensors or model.safetensors.index.json, or
// one of those files (config.json beside it). Q/K rows go to the interleaved pairing.
Checkpoint read_hf_model(const std::string& path);

enum class HfDtype { F32, F16, BF16 };
HfDtype parse_hf_dtype(const std::string& name);
// Writes DIR/model.safetensors and DIR/config.json (LlamaForCausalLM), plus tokenizer.model
// when the checkpoint carries one; α folded into o_proj and down_proj. DIR is created.
void write_hf_model(const Checkpoint& ck, const std::string& dir, HfDtype dtype);

// One tensor to write; `transform`, when set, is applied to a copy of src just before
// it is written, so that a conversion holds at most one tensor's copy at a time.
struct SafetensorEntry {
    std::string name;
    const Tensor* src = nullptr;
    std::function<void(Tensor&)> transform;
};

// One safetensors file (atomic).
void write_safetensors(const std::string& path, const std::vector<SafetensorEntry>& tensors, HfDtype dtype,
                       const nlohmann::json& metadata);
// The same into a writer the caller finishes and publishes (a folder written as a whole).
void write_safetensors(AtomicWriter& w, const std::vector<SafetensorEntry>& tensors, HfDtype dtype,
                       const nlohmann::json& metadata);

}  // namespace ane
