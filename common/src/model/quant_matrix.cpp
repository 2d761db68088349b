#include "ane/model/quant_matrix.hpp"

#include <cstring>

#include "ane/error.hpp"
#include "ane/weights.hpp"

namespace ane {

std::size_t encoded_row_bytes(ggml::Type type, int cols) {
    std::size_t be = 0, bb = 0;
    require(ggml::type_layout(std::uint32_t(type), be, bb), "cannot decode ggml ", ggml::type_name(std::uint32_t(type)));
    require(cols > 0 && std::size_t(cols) % be == 0, "rows of ", cols, " values are not whole ",
            ggml::type_name(std::uint32_t(type)), " blocks of ", be);
    return std::size_t(cols) / be * bb;
}

bool QuantMatrix::can_encode(ggml::Type type, int cols) {
    switch (type) {
        case ggml::Type::F32: case ggml::Type::F16: case ggml::Type::BF16: return cols > 0;
        case ggml::Type::Q8_0: case ggml::Type::Q4_0: return cols > 0 && cols % 32 == 0;
        default: return false;
    }
}

QuantMatrix QuantMatrix::view(const Tensor& t) {
    require(t.shape().size() == 2, "a weight matrix must be 2-D, not ", shape_string(t.shape()));
    QuantMatrix m;
    m.rows_ = int(t.rows());
    m.cols_ = int(t.cols());
    m.row_bytes_ = std::size_t(m.cols_) * sizeof(float);
    m.view_ = reinterpret_cast<const std::uint8_t*>(t.data());
    return m;
}

QuantMatrix QuantMatrix::from_blocks(ggml::Type type, int rows, int cols, const std::uint8_t* data) {
    QuantMatrix m;
    m.type_ = type;
    m.rows_ = rows;
    m.cols_ = cols;
    m.row_bytes_ = encoded_row_bytes(type, cols);
    m.owned_.assign(data, data + m.bytes());
    return m;
}

QuantMatrix QuantMatrix::encode(const Tensor& t, ggml::Type type) {
    require(t.shape().size() == 2, "a weight matrix must be 2-D, not ", shape_string(t.shape()));
    require(can_encode(type, int(t.cols())), "cannot encode rows of ", t.cols(), " values as ",
            ggml::type_name(std::uint32_t(type)));
    QuantMatrix m;
    m.type_ = type;
    m.rows_ = int(t.rows());
    m.cols_ = int(t.cols());
    m.row_bytes_ = encoded_row_bytes(type, m.cols_);
    m.owned_.resize(m.bytes());
#pragma omp parallel for schedule(static)
    for (int r = 0; r < m.rows_; ++r)
        ggml::quantize(type, t.row(r), m.owned_.data() + std::size_t(r) * m.row_bytes_, std::size_t(m.cols_));
    return m;
}

const float* QuantMatrix::f32() const {
    return type_ == ggml::Type::F32 ? reinterpret_cast<const float*>(data()) : nullptr;
}

namespace {

// Bytes of quants per block, and where a (row j, value run c) lands in a rows8 block group.
struct Rows8Geometry {
    std::size_t quant_bytes, block_bytes, group_block_bytes;
    explicit Rows8Geometry(ggml::Type type)
        : quant_bytes(type == ggml::Type::Q8_0 ? 32 : 16), block_bytes(quant_bytes + 2),
          group_block_bytes(8 * block_bytes) {}
    std::size_t scale_at(int j) const { return std::size_t(j) * 2; }
    std::size_t run_at(int c, int j) const { return 16 + (std::size_t(c) * 8 + std::size_t(j)) * 4; }
};

}  // namespace

void QuantMatrix::interleave_rows8() {
    if (layout_ == Layout::rows8) return;
    require(can_interleave(type_, rows_), "rows8 layout needs Q8_0/Q4_0 rows in groups of 8");
    const Rows8Geometry g(type_);
    const bool q8 = type_ == ggml::Type::Q8_0;
    const int nb = cols_ / 32, runs = int(g.quant_bytes / 4);
    std::vector<std::uint8_t> out(bytes());
    for (int group = 0; group < rows_ / 8; ++group)
        for (int b = 0; b < nb; ++b) {
            std::uint8_t* dst = out.data() + (std::size_t(group) * nb + b) * g.group_block_bytes;
            for (int j = 0; j < 8; ++j) {
                const std::uint8_t* blk = row(group * 8 + j) + std::size_t(b) * g.block_bytes;
                std::memcpy(dst + g.scale_at(j), blk, 2);
                for (int c = 0; c < runs; ++c)
                    for (int i = 0; i < 4; ++i)
                        dst[g.run_at(c, j) + i] = std::uint8_t(blk[2 + 4 * c + i] ^ (q8 ? 0x80 : 0));
            }
        }
    owned_ = std::move(out);
    view_ = nullptr;
    layout_ = Layout::rows8;
}

void QuantMatrix::ggml_row(int r, std::uint8_t* out) const {
    if (layout_ == Layout::ggml) {
        std::memcpy(out, row(r), row_bytes_);
        return;
    }
    const Rows8Geometry g(type_);
    const bool q8 = type_ == ggml::Type::Q8_0;
    const int nb = cols_ / 32, runs = int(g.quant_bytes / 4), j = r % 8;
    for (int b = 0; b < nb; ++b) {
        const std::uint8_t* src = group(r / 8) + std::size_t(b) * g.group_block_bytes;
        std::uint8_t* blk = out + std::size_t(b) * g.block_bytes;
        std::memcpy(blk, src + g.scale_at(j), 2);
        for (int c = 0; c < runs; ++c)
            for (int i = 0; i < 4; ++i) blk[2 + 4 * c + i] = std::uint8_t(src[g.run_at(c, j) + i] ^ (q8 ? 0x80 : 0));
    }
}

void QuantMatrix::decode_rows(int begin, int end, float* out) const {
    if (layout_ == Layout::ggml) {
        for (int r = begin; r < end; ++r)
            ggml::dequantize(type_, row(r), out + std::size_t(r - begin) * cols_, std::size_t(cols_));
        return;
    }
    thread_local std::vector<std::uint8_t> blocks;
    blocks.resize(row_bytes_);
    for (int r = begin; r < end; ++r) {
        ggml_row(r, blocks.data());
        ggml::dequantize(type_, blocks.data(), out + std::size_t(r - begin) * cols_, std::size_t(cols_));
    }
}

Tensor QuantMatrix::decode() const {
    Tensor t({rows_, cols_});
    decode_rows(0, rows_, t.data());
    return t;
}

QuantMatrix QuantMatrix::converted(ggml::Type type) const {
    if (type == type_ && layout_ == Layout::ggml) return *this;
    return encode(decode(), type);
}

void QuantMatrix::rope_rows_halves_to_interleaved(int n_heads, int head_dim) {
    require(layout_ == Layout::ggml, "RoPE row permutation of a rows8 matrix");
    if (owned_.empty()) owned_.assign(data(), data() + bytes());
    view_ = nullptr;
    permute_rope_row_bytes(owned_.data(), row_bytes_, n_heads, head_dim, /*to_interleaved=*/true);
}

ggml::Type parse_weight_type(const std::string& text) {
    if (text == "f32") return ggml::Type::F32;
    if (text == "f16") return ggml::Type::F16;
    if (text == "bf16") return ggml::Type::BF16;
    if (text == "q8_0") return ggml::Type::Q8_0;
    if (text == "q4_0") return ggml::Type::Q4_0;
    throw UsageError("--weights '" + text + "' is not one of f32, f16, bf16, q8_0, q4_0");
}

std::optional<ggml::Type> weight_type_for_device(const std::string& weights, const std::string& device) {
    std::optional<ggml::Type> type;
    if (!weights.empty()) type = parse_weight_type(weights);
    if (device == "cpu") return type;
    require_usage(!type || *type == ggml::Type::F32, "--weights ", weights, " is for --device cpu");
    return ggml::Type::F32;
}

}  // namespace ane
