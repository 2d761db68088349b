#pragma once
// The compressed int8 artifact for size-capped submissions (docs/artifact-format.md): 2-D
// tensors as int8 with one fp16 scale per row, clipped at the 99.99984th percentile of |w|
// in the row; tensors of at most 65,536 elements (and all 1-D ones) as fp16; the model
// config and names in a JSON header; the whole payload compressed with zlib or zstd.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ane/checkpoint.hpp"
#include "ane/model/quant_matrix.hpp"

namespace ane {

enum class ArtifactCodec : std::uint32_t { Zlib = 1, Zstd = 2 };
ArtifactCodec parse_artifact_codec(const std::string& name);

constexpr double kClipQuantile = 0.9999984;
constexpr std::int64_t kKeepFp16MaxElements = 65536;

struct PackedTensorReport {
    std::string name, encoding;  // "int8-rows" or "f16"
    Shape shape;
    double max_abs_error = 0, max_abs = 0;  // of the round trip
};

struct PackReport {
    std::uint64_t float_bytes = 0, payload_bytes = 0, compressed_bytes = 0;
    std::vector<PackedTensorReport> tensors;
};

bool looks_like_artifact(const std::uint8_t* data, std::size_t size);
PackReport write_artifact(const Checkpoint& ck, const std::string& path, ArtifactCodec codec, int level);
// Dequantized in memory. With `kept`, the int8 rows of a width that is whole 32-value blocks
// are not: they go there as the Q8_0 matrix they exactly are (each block with its row's
// scale), under their canonical names, and their tensors in the checkpoint stay empty.
Checkpoint read_artifact(const std::string& path, std::map<std::string, QuantMatrix>* kept = nullptr);

// The clip value of one row: linear interpolation at quantile q of |w| (as torch.quantile).
float row_clip_value(const float* row, std::int64_t n, double q = kClipQuantile);

}  // namespace ane
