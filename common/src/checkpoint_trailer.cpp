#include "ane/checkpoint_trailer.hpp"

#include <cstring>

#include "ane/error.hpp"
#include "ane/file_io.hpp"

namespace ane {

bool starts_with_trailer_magic(std::span<const std::uint8_t> bytes) {
    return bytes.size() >= sizeof(kTrailerMagic) && std::memcmp(bytes.data(), kTrailerMagic, sizeof(kTrailerMagic)) == 0;
}

namespace {
std::size_t dtype_size(const std::string& dtype, const std::string& path) {
    if (dtype == "f32") return 4;
    if (dtype == "u8") return 1;
    throw error(path, ": trailer: unknown blob dtype '", dtype, "'");
}
}  // namespace

Trailer parse_trailer(std::span<const std::uint8_t> bytes, const std::string& path) {
    ByteReader r(bytes, path);
    require(starts_with_trailer_magic(bytes), path, ": unexpected ", bytes.size(),
            " bytes after the BLZT body (not an anetrain trailer)");
    r.skip(sizeof(kTrailerMagic));
    const auto version = r.get<std::uint32_t>("trailer version");
    require(version == kTrailerVersion, path, ": trailer version ", version, " is not supported (expected ",
            kTrailerVersion, ")");
    r.get<std::uint32_t>("trailer reserved field");
    const auto json_bytes = r.get<std::uint64_t>("trailer JSON length");
    const auto data_bytes = r.get<std::uint64_t>("trailer data length");
    require(json_bytes <= r.remaining() && data_bytes == r.remaining() - json_bytes, path,
            ": trailer lengths (JSON ", json_bytes, ", data ", data_bytes, ") do not match the ", r.remaining(),
            " bytes that follow its header");
    const auto* json_ptr = reinterpret_cast<const char*>(r.take(json_bytes, "trailer JSON"));
    Trailer t;
    t.json = nlohmann::json::parse(json_ptr, json_ptr + json_bytes, nullptr, false);
    require(!t.json.is_discarded() && t.json.is_object(), path, ": trailer JSON is not a valid JSON object");
    const std::span<const std::uint8_t> data = bytes.subspan(r.pos(), data_bytes);
    if (!t.json.contains("blobs")) return t;
    const auto& blobs = t.json["blobs"];
    require(blobs.is_array(), path, ": trailer 'blobs' is not an array");
    for (const auto& b : blobs) {
        require(b.is_object() && b.contains("name") && b["name"].is_string() && b.contains("dtype") &&
                    b["dtype"].is_string() && b.contains("shape") && b["shape"].is_array() &&
                    b.contains("offset") && b["offset"].is_number_unsigned(),
                path, ": trailer blob entry is malformed: ", b.dump());
        TrailerBlob blob;
        blob.name = b["name"].get<std::string>();
        blob.dtype = b["dtype"].get<std::string>();
        std::uint64_t count = 1;
        for (const auto& d : b["shape"]) {
            require(d.is_number_unsigned() && d.get<std::uint64_t>() < (1ull << 40), path, ": trailer blob '",
                    blob.name, "' has a bad shape");
            blob.shape.push_back(d.get<std::int64_t>());
            count *= d.get<std::uint64_t>();
            require(count < (1ull << 40), path, ": trailer blob '", blob.name, "' is too large");
        }
        const std::uint64_t nbytes = count * dtype_size(blob.dtype, path);
        const std::uint64_t offset = b["offset"].get<std::uint64_t>();
        require(offset <= data.size() && nbytes <= data.size() - offset, path, ": trailer blob '", blob.name,
                "' (", nbytes, " bytes at ", offset, ") lies outside the trailer's ", data.size(), " data bytes");
        blob.bytes = data.subspan(offset, nbytes);
        t.blobs.push_back(std::move(blob));
    }
    return t;
}

std::vector<std::uint8_t> encode_trailer_head(Trailer& trailer) {
    nlohmann::json blobs = nlohmann::json::array();
    std::uint64_t offset = 0;
    for (const auto& b : trailer.blobs) {
        blobs.push_back({{"name", b.name}, {"dtype", b.dtype}, {"shape", b.shape}, {"offset", offset}});
        offset += b.bytes.size();
    }
    trailer.json["blobs"] = blobs;
    const std::string json = trailer.json.dump();
    std::vector<std::uint8_t> head(kTrailerFixedBytes + json.size());
    std::uint8_t* p = head.data();
    std::memcpy(p, kTrailerMagic, 8);
    const std::uint32_t version = kTrailerVersion, reserved = 0;
    const std::uint64_t json_bytes = json.size(), data_bytes = offset;
    std::memcpy(p + 8, &version, 4);
    std::memcpy(p + 12, &reserved, 4);
    std::memcpy(p + 16, &json_bytes, 8);
    std::memcpy(p + 24, &data_bytes, 8);
    std::memcpy(p + 32, json.data(), json.size());
    return head;
}

}  // namespace ane
