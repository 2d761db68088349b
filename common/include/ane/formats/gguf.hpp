#pragma once
// GGUF (llama.cpp's model file), versions 2 and 3: every metadata value type, tensor infos,
// aligned data. Read through a memory map with every length and offset checked; written
// atomically. Models of the `llama` architecture map to the canonical weights.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ane/checkpoint.hpp"
#include "ane/file_io.hpp"
#include "ane/formats/ggml_quants.hpp"
#include "ane/model/quant_matrix.hpp"

namespace ane {

enum class GgufValueType : std::uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
    U64 = 10, I64 = 11, F64 = 12,
};

struct GgufValue {
    GgufValueType type = GgufValueType::U32;
    std::uint64_t u = 0;  // unsigned integer types and bool
    std::int64_t i = 0;   // signed integer types
    double f = 0;         // F32, F64
    std::string s;        // STRING
    GgufValueType elem_type = GgufValueType::U32;  // ARRAY
    std::vector<GgufValue> array;

    static GgufValue of_u32(std::uint32_t v);
    static GgufValue of_i32(std::int32_t v);
    static GgufValue of_f32(float v);
    static GgufValue of_bool(bool v);
    static GgufValue of_string(std::string v);
    static GgufValue of_array(GgufValueType elem, std::vector<GgufValue> items);

    bool is_integer() const;
    bool is_number() const { return is_integer() || type == GgufValueType::F32 || type == GgufValueType::F64; }
    double as_double() const;
    // A short readable rendering (arrays abbreviated).
    std::string summary() const;
};

struct GgufTensorInfo {
    std::string name;
    std::vector<std::uint64_t> ne;  // ne[0] varies fastest (the columns of a matrix)
    std::uint32_t type = 0;
    std::uint64_t offset = 0;       // from the start of the data section
    std::uint64_t bytes = 0;
    std::uint64_t numel() const;
    Shape shape() const;  // row-major: reversed ne
};

class GgufFile {
public:
    explicit GgufFile(const std::string& path);
    // From bytes in memory (a vocabulary-only GGUF kept in a checkpoint); `origin` names it.
    GgufFile(std::vector<std::uint8_t> bytes, std::string origin);
    const std::string& path() const { return origin_; }
    std::uint32_t version() const { return version_; }
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(const std::string& key) const;
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(const std::string& name) const;
    // Dequantized to float32 with the row-major shape.
    Tensor read_tensor(const GgufTensorInfo& info) const;
    const std::uint8_t* tensor_data(const GgufTensorInfo& info) const { return data_ + info.offset; }
    std::size_t size() const { return bytes_.size(); }

private:
    void parse();
    MappedFile file_;
    std::vector<std::uint8_t> owned_;
    std::span<const std::uint8_t> bytes_;
    std::string origin_;
    std::uint32_t version_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::vector<GgufTensorInfo> tensors_;
    const std::uint8_t* data_ = nullptr;
};

bool looks_like_gguf(const std::uint8_t* data, std::size_t size);

// A `llama` GGUF as a checkpoint: config from its metadata, tensors dequantized, Q/K rows as
// stored (llama.cpp's `llama` GGUFs are already interleaved). The tokenizer metadata is kept
// as a vocabulary-only GGUF in Checkpoint::tokenizer_gguf. With `kept`, the matrices stored
// in an encoding other than F32 are not decoded: they go there under their canonical names
// ("layers.0.wq", "embed", "classifier") and their tensors in the checkpoint stay empty.
Checkpoint read_gguf_model(const std::string& path, std::map<std::string, QuantMatrix>* kept = nullptr);

// What export writes: F32, F16, Q8_0 or Q4_0 for matrices (norms always F32).
enum class GgufExportType { F32, F16, Q8_0, Q4_0 };
GgufExportType parse_gguf_export_type(const std::string& name);

// Writes a `llama` GGUF v3 that llama.cpp loads: metadata keys, tensors (output.weight when
// untied), and the tokenizer metadata given (from a SentencePiece model or a source GGUF).
// A residual scale α != 1 is folded into Wo and W2 so the model is the same in llama.cpp.
void write_gguf_model(const Checkpoint& ck, const std::vector<std::pair<std::string, GgufValue>>& tokenizer_kv,
                      GgufExportType type, const std::string& path);

// The tokenizer.* entries of a GGUF, and a vocabulary-only GGUF holding just them.
std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const GgufFile& file);
std::vector<std::uint8_t> encode_vocab_only_gguf(const std::vector<std::pair<std::string, GgufValue>>& kv);

}  // namespace ane
