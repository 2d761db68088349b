#pragma once
// A weight matrix [rows, cols] as inference keeps it: float32 (a view of a Tensor, no copy)
// or one of llama.cpp's encodings kept as its blocks (F16, BF16, Q8_0, Q4_0 and the K-quants
// the GGUF reader knows), each row a whole number of blocks.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ane/formats/ggml_quants.hpp"
#include "ane/tensor.hpp"

namespace ane {

class QuantMatrix {
public:
    QuantMatrix() = default;
    // F32 rows of a 2-D tensor, not copied: the tensor must outlive the view.
    static QuantMatrix view(const Tensor& t);
    // A copy of `rows` rows of encoded blocks (data holds rows * row_bytes bytes).
    static QuantMatrix from_blocks(ggml::Type type, int rows, int cols, const std::uint8_t* data);
    // The tensor encoded as `type` (F32, F16, BF16, Q8_0, Q4_0; the quants need cols % 32 == 0).
    static QuantMatrix encode(const Tensor& t, ggml::Type type);
    // Whether rows of `cols` values can be encoded as `type` (whole blocks).
    static bool can_encode(ggml::Type type, int cols);

    bool empty() const { return rows_ == 0; }
    ggml::Type type() const { return type_; }
    std::string type_name() const { return ggml::type_name(std::uint32_t(type_)); }
    int rows() const { return rows_; }
    int cols() const { return cols_; }
    std::size_t row_bytes() const { return row_bytes_; }
    std::size_t bytes() const { return row_bytes_ * std::size_t(rows_); }
    const std::uint8_t* data() const { return owned_.empty() ? view_ : owned_.data(); }
    const std::uint8_t* row(int r) const { return data() + std::size_t(r) * row_bytes_; }
    // The float32 matrix of an F32 one (nullptr otherwise).
    const float* f32() const;

    // Rows [begin, end) decoded into out [(end - begin), cols].
    void decode_rows(int begin, int end, float* out) const;
    Tensor decode() const;
    // The same matrix in another encoding (decoded row by row, then encoded).
    QuantMatrix converted(ggml::Type type) const;
    // Q/K rows from split halves to the interleaved RoPE pairing (a copy when this is a view).
    void rope_rows_halves_to_interleaved(int n_heads, int head_dim);

    // Q8_0 and Q4_0 may be laid out in groups of 8 rows for the integer kernels (one 32-bit lane
    // per row: no horizontal sums, one scale vector per block): per group and block, the 8 fp16
    // scales, then the quants in 4-byte runs, run c of rows 0..7 before run c + 1. Q8_0 quants
    // are stored plus 128 (unsigned). The same bytes as the ggml blocks; row() is then invalid.
    enum class Layout { ggml, rows8 };
    Layout layout() const { return layout_; }
    static bool can_interleave(ggml::Type type, int rows) {
        return (type == ggml::Type::Q8_0 || type == ggml::Type::Q4_0) && rows % 8 == 0;
    }
    void interleave_rows8();
    // Group g's bytes (rows 8g..8g+7) in the rows8 layout.
    const std::uint8_t* group(int g) const { return data() + std::size_t(g) * 8 * row_bytes_; }

private:
    // Row r's ggml blocks, from either layout, into out (row_bytes).
    void ggml_row(int r, std::uint8_t* out) const;

    ggml::Type type_ = ggml::Type::F32;
    Layout layout_ = Layout::ggml;
    int rows_ = 0, cols_ = 0;
    std::size_t row_bytes_ = 0;
    std::vector<std::uint8_t> owned_;
    const std::uint8_t* view_ = nullptr;
};

// Bytes of one row of `cols` values in `type`; throws when cols is not whole blocks.
std::size_t encoded_row_bytes(ggml::Type type, int cols);
// "f32" | "f16" | "bf16" | "q8_0" | "q4_0" (--weights), else a UsageError naming them.
ggml::Type parse_weight_type(const std::string& text);
// The encoding ane-eval and ane-generate load with, from --weights (empty: none given) and
// --device: nothing (as the file stores it) or the one given on cpu; float32 on the Neural
// Engine devices, which make their own fp16 copies, refusing any other --weights there.
std::optional<ggml::Type> weight_type_for_device(const std::string& weights, const std::string& device);

}  // namespace ane
