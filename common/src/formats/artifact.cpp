#include "ane/formats/artifact.hpp"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ane/error.hpp"
#include "ane/file_io.hpp"
#include "ane/half.hpp"

namespace ane {

namespace {
constexpr char kMagic[8] = {'A', 'N', 'E', 'I', 'N', 'T', '8', 'Z'};
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kFixedBytes = 40;  // magic, version, codec, raw bytes, compressed bytes, reserved
}  // namespace

ArtifactCodec parse_artifact_codec(const std::string& name) {
    if (name == "zlib") return ArtifactCodec::Zlib;
    if (name == "zstd") return ArtifactCodec::Zstd;
    throw error("unknown codec '", name, "' (expected zlib or zstd)");
}

bool looks_like_artifact(const std::uint8_t* data, std::size_t size) {
    return size >= kFixedBytes && std::memcmp(data, kMagic, sizeof(kMagic)) == 0;
}

float row_clip_value(const float* row, std::int64_t n, double q) {
    if (n <= 0) return 0.0f;
    const double pos = q * double(n - 1);
    const std::int64_t lo = std::int64_t(std::floor(pos));
    const double frac = pos - double(lo);
    std::vector<float> a(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) a[std::size_t(i)] = std::fabs(row[i]);
    std::nth_element(a.begin(), a.begin() + lo, a.end());
    const float v_lo = a[std::size_t(lo)];
    if (lo + 1 >= n || frac == 0.0) return v_lo;
    const float v_hi = *std::min_element(a.begin() + lo + 1, a.end());
    return float(double(v_lo) + frac * (double(v_hi) - double(v_lo)));
}

namespace {

struct Blob {
    std::string name, encoding;
    Shape shape;
    std::vector<std::uint8_t> bytes;
};

Blob encode_tensor(const std::string& name, const Tensor& t, PackedTensorReport& rep) {
    Blob b{name, "", t.shape(), {}};
    rep.name = name;
    rep.shape = t.shape();
    const std::int64_t n = t.numel();
    auto track = [&](float w, float back) {
        rep.max_abs = std::max(rep.max_abs, double(std::fabs(w)));
        rep.max_abs_error = std::max(rep.max_abs_error, double(std::fabs(w - back)));
    };
    if (t.shape().size() != 2 || n <= kKeepFp16MaxElements) {
        b.encoding = rep.encoding = "f16";
        b.bytes.resize(std::size_t(n) * 2);
        std::vector<std::uint16_t> h(static_cast<std::size_t>(n));
        float_to_fp16(t.data(), h.data(), h.size());
        std::memcpy(b.bytes.data(), h.data(), b.bytes.size());
        for (std::int64_t i = 0; i < n; ++i) track(t[i], fp16_to_float(h[std::size_t(i)]));
    } else {
        b.encoding = rep.encoding = "int8-rows";
        const std::int64_t rows = t.rows(), cols = t.cols();
        b.bytes.resize(std::size_t(rows * cols + rows * 2));
        auto* q = reinterpret_cast<std::int8_t*>(b.bytes.data());
        std::uint8_t* scales = b.bytes.data() + rows * cols;
        for (std::int64_t r = 0; r < rows; ++r) {
            const float* w = t.row(r);
            const float clip = row_clip_value(w, cols);
            const std::uint16_t sh = float_to_fp16(clip > 0 ? clip / 127.0f : 0.0f);
            std::memcpy(scales + 2 * r, &sh, 2);
            const float s = fp16_to_float(sh);
            for (std::int64_t c = 0; c < cols; ++c) {
                const float v = std::clamp(w[c], -clip, clip);
                const long qi = s > 0 ? std::lround(v / s) : 0;
                q[r * cols + c] = std::int8_t(std::clamp(qi, -127L, 127L));
                track(w[c], float(q[r * cols + c]) * s);
            }
        }
    }
    return b;
}

std::vector<std::uint8_t> compress(const std::vector<std::uint8_t>& raw, ArtifactCodec codec, int level,
                                   const std::string& path) {
    std::vector<std::uint8_t> out;
    if (codec == ArtifactCodec::Zlib) {
        uLongf n = compressBound(uLong(raw.size()));
        out.resize(n);
        const int rc = compress2(out.data(), &n, raw.data(), uLong(raw.size()), level);
        require(rc == Z_OK, path, ": zlib compression failed (", rc, ")");
        out.resize(n);
    } else {
        out.resize(ZSTD_compressBound(raw.size()));
        const std::size_t n = ZSTD_compress(out.data(), out.size(), raw.data(), raw.size(), level);
        require(!ZSTD_isError(n), path, ": zstd compression failed: ", ZSTD_getErrorName(n));
        out.resize(n);
    }
    return out;
}

// Decompresses in chunks, so that memory follows what the payload really holds rather than
// the size its header claims, and stops with an error past that size.
std::vector<std::uint8_t> decompress(const std::uint8_t* src, std::size_t n, std::uint64_t raw_bytes, ArtifactCodec codec,
                                     const std::string& path) {
    constexpr std::size_t kChunk = 1 << 20;
    std::vector<std::uint8_t> out;
    auto room = [&] {
        require(out.size() < raw_bytes, path, ": the payload decompresses past its stated ", raw_bytes, " bytes");
        const std::size_t before = out.size();
        out.resize(before + std::size_t(std::min<std::uint64_t>(kChunk, raw_bytes - before)));
        return before;
    };
    if (codec == ArtifactCodec::Zlib) {
        z_stream z{};
        require(inflateInit(&z) == Z_OK, path, ": zlib cannot start");
        z.next_in = const_cast<Bytef*>(src);
        z.avail_in = uInt(n);
        int rc = Z_OK;
        while (rc == Z_OK) {
            if (out.size() == raw_bytes) {  // full: only the stream's end may remain
                std::uint8_t probe = 0;
                z.next_out = &probe;
                z.avail_out = 1;
                rc = inflate(&z, Z_FINISH);
                if (z.avail_out == 0) rc = Z_DATA_ERROR;
                break;
            }
            const std::size_t at = room();
            z.next_out = out.data() + at;
            z.avail_out = uInt(out.size() - at);
            rc = inflate(&z, Z_NO_FLUSH);
            out.resize(out.size() - z.avail_out);
        }
        inflateEnd(&z);
        require(rc == Z_STREAM_END && out.size() == raw_bytes && z.avail_in == 0, path, ": corrupt zlib payload");
        return out;
    }
    ZSTD_DStream* z = ZSTD_createDStream();
    require(z != nullptr, path, ": zstd cannot start");
    ZSTD_inBuffer in{src, n, 0};
    std::size_t rc = 1;  // not 0: the frame has not ended
    bool bad = false;
    while (rc != 0) {
        const std::size_t in_before = in.pos;
        std::uint8_t probe = 0;
        const bool full = out.size() == raw_bytes;  // then the frame may only end, with no output
        const std::size_t at = full ? 0 : room();
        ZSTD_outBuffer o{full ? &probe : out.data() + at, full ? 1 : out.size() - at, 0};
        rc = ZSTD_decompressStream(z, &o, &in);
        if (!full) out.resize(at + o.pos);
        if (ZSTD_isError(rc) || (full && o.pos > 0)) {
            bad = true;
            break;
        }
        if (rc != 0 && o.pos == 0 && in.pos == in_before) break;  // truncated: no progress
    }
    ZSTD_freeDStream(z);
    require(!bad && rc == 0 && out.size() == raw_bytes && in.pos == in.size, path, ": corrupt zstd payload");
    return out;
}

}  // namespace

PackReport write_artifact(const Checkpoint& ck, const std::string& path, ArtifactCodec codec, int level) {
    const ModelConfig& c = ck.weights.config;
    c.validate(path);
    if (codec == ArtifactCodec::Zlib) require(level >= 0 && level <= 9, "zlib level must be 0-9");
    if (codec == ArtifactCodec::Zstd) require(level >= 1 && level <= 22, "zstd level must be 1-22");
    PackReport report;
    std::vector<Blob> blobs;
    ck.weights.for_each([&](const std::string& name, const Tensor& t) {
        PackedTensorReport rep;
        blobs.push_back(encode_tensor(name, t, rep));
        report.tensors.push_back(rep);
        report.float_bytes += t.bytes();
    });
    for (auto [name, bytes] : tokenizer_files(ck))
        if (!bytes->empty()) blobs.push_back({name, "u8", {std::int64_t(bytes->size())}, *bytes});
    nlohmann::json header;
    header["config"] = c;
    header["metadata"] = ck.metadata;
    nlohmann::json list = nlohmann::json::array();
    std::uint64_t offset = 0;
    for (const auto& b : blobs) {
        list.push_back({{"name", b.name}, {"encoding", b.encoding}, {"shape", b.shape}, {"offset", offset},
                        {"bytes", b.bytes.size()}});
        offset += b.bytes.size();
    }
    header["tensors"] = list;
    const std::string json = header.dump();
    std::vector<std::uint8_t> raw(8 + json.size() + offset);
    const std::uint64_t json_len = json.size();
    std::memcpy(raw.data(), &json_len, 8);
    std::memcpy(raw.data() + 8, json.data(), json.size());
    std::size_t at = 8 + json.size();
    for (const auto& b : blobs) {
        std::memcpy(raw.data() + at, b.bytes.data(), b.bytes.size());
        at += b.bytes.size();
    }
    blobs.clear();
    const std::vector<std::uint8_t> packed = compress(raw, codec, level, path);
    report.payload_bytes = raw.size();
    report.compressed_bytes = kFixedBytes + packed.size();

    AtomicWriter w(path);
    w.write(kMagic, sizeof(kMagic));
    w.put<std::uint32_t>(kVersion);
    w.put<std::uint32_t>(std::uint32_t(codec));
    w.put<std::uint64_t>(raw.size());
    w.put<std::uint64_t>(packed.size());
    w.put<std::uint64_t>(0);
    w.write(packed.data(), packed.size());
    w.commit();
    return report;
}

Checkpoint read_artifact(const std::string& path, std::map<std::string, QuantMatrix>* kept) {
    const MappedFile f(path);
    ByteReader r(f.bytes(), path);
    require(looks_like_artifact(f.data(), f.size()), path, ": not an anetrain int8 artifact (bad magic)");
    r.skip(sizeof(kMagic));
    const auto version = r.get<std::uint32_t>("artifact version");
    require(version == kVersion, path, ": artifact version ", version, " is not supported");
    const auto codec = r.get<std::uint32_t>("artifact codec");
    const auto raw_bytes = r.get<std::uint64_t>("artifact payload size");
    const auto packed_bytes = r.get<std::uint64_t>("artifact compressed size");
    r.get<std::uint64_t>("artifact reserved field");
    require(packed_bytes == r.remaining(), path, ": compressed size ", packed_bytes, " disagrees with the ",
            r.remaining(), " bytes that follow the header");
    require(raw_bytes < (1ull << 40) && raw_bytes >= 8, path, ": implausible payload size ", raw_bytes);
    require(codec == std::uint32_t(ArtifactCodec::Zlib) || codec == std::uint32_t(ArtifactCodec::Zstd), path,
            ": unknown codec ", codec);
    const std::uint8_t* src = r.take(packed_bytes, "compressed payload");
    const std::vector<std::uint8_t> raw = decompress(src, packed_bytes, raw_bytes, ArtifactCodec(codec), path);
    ByteReader p(raw, path + " (payload)");
    const auto json_len = p.get<std::uint64_t>("payload JSON length");
    require(json_len <= p.remaining(), path, ": payload JSON length ", json_len, " is too large");
    const auto* jp = reinterpret_cast<const char*>(p.take(json_len, "payload JSON"));
    const nlohmann::json header = nlohmann::json::parse(jp, jp + json_len, nullptr, false);
    require(!header.is_discarded() && header.is_object() && header.contains("config") && header.contains("tensors") &&
                header["tensors"].is_array(),
            path, ": payload header is not valid");
    ModelConfig c;
    try {
        c = header["config"].get<ModelConfig>();
    } catch (const std::exception& e) {
        throw error(path, ": ", e.what());
    }
    c.validate(path);
    Checkpoint ck;
    ck.weights = Weights::zeros(c);
    if (header.contains("metadata") && header["metadata"].is_object()) ck.metadata = header["metadata"];
    const std::size_t data_start = p.pos();
    const std::uint64_t data_size = raw.size() - data_start;
    std::size_t found = 0, expected = 0;  // counted before kept tensors are emptied
    ck.weights.for_each([&](const std::string&, const Tensor&) { ++expected; });
    for (const auto& e : header["tensors"]) {
        require(e.is_object() && e.contains("name") && e["name"].is_string() && e.contains("encoding") &&
                    e["encoding"].is_string() && e.contains("offset") && e["offset"].is_number_unsigned() &&
                    e.contains("bytes") && e["bytes"].is_number_unsigned() && e.contains("shape") && e["shape"].is_array(),
                path, ": malformed tensor entry ", e.dump());
        const std::string name = e["name"].get<std::string>(), enc = e["encoding"].get<std::string>();
        const std::uint64_t off = e["offset"].get<std::uint64_t>(), nbytes = e["bytes"].get<std::uint64_t>();
        require(off <= data_size && nbytes <= data_size - off, path, ": tensor '", name, "' lies outside the payload");
        const std::uint8_t* b = raw.data() + data_start + off;
        if (enc == "u8") {
            for (auto [file, dst] : tokenizer_files(ck))
                if (name == file) dst->assign(b, b + nbytes);
            continue;
        }
        Tensor* dst = ck.weights.find(name);
        require(dst != nullptr, path, ": unknown tensor '", name, "'");
        require(e["shape"].get<Shape>() == dst->shape(), path, ": tensor '", name, "' has the wrong shape");
        const std::int64_t n = dst->numel();
        if (enc == "f16") {
            require(nbytes == std::uint64_t(n) * 2, path, ": tensor '", name, "' has ", nbytes, " bytes, expected ", n * 2);
            std::vector<std::uint16_t> h(static_cast<std::size_t>(n));
            std::memcpy(h.data(), b, nbytes);
            fp16_to_float(h.data(), dst->data(), h.size());
        } else if (enc == "int8-rows") {
            const std::int64_t rows = dst->rows(), cols = dst->cols();
            require(dst->shape().size() == 2 && nbytes == std::uint64_t(rows * cols + rows * 2), path, ": tensor '",
                    name, "' has ", nbytes, " bytes, expected ", rows * cols + rows * 2);
            if (kept && cols % 32 == 0) {
                // Exactly Q8_0: every block of a row takes the row's fp16 scale.
                std::vector<std::uint8_t> blocks(std::size_t(rows * cols / 32 * 34));
                for (std::int64_t row = 0; row < rows; ++row)
                    for (std::int64_t blk = 0; blk < cols / 32; ++blk) {
                        std::uint8_t* out = blocks.data() + std::size_t(row * (cols / 32) + blk) * 34;
                        std::memcpy(out, b + rows * cols + 2 * row, 2);
                        std::memcpy(out + 2, b + row * cols + blk * 32, 32);
                    }
                (*kept)[name] = QuantMatrix::from_blocks(ggml::Type::Q8_0, int(rows), int(cols), blocks.data());
                *dst = Tensor();
                ++found;
                continue;
            }
            const auto* q = reinterpret_cast<const std::int8_t*>(b);
            for (std::int64_t row = 0; row < rows; ++row) {
                std::uint16_t sh;
                std::memcpy(&sh, b + rows * cols + 2 * row, 2);
                const float s = fp16_to_float(sh);
                float* out = dst->row(row);
                for (std::int64_t col = 0; col < cols; ++col) out[col] = float(q[row * cols + col]) * s;
            }
        } else {
            throw error(path, ": tensor '", name, "' has unknown encoding '", enc, "'");
        }
        ++found;
    }
    require(found == expected, path, ": holds ", found, " of the model's ", expected, " tensors");
    ck.state.total_steps = 0;
    return ck;
}

}  // namespace ane
