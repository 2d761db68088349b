#pragma once
// The anetrain trailer that follows a BLZT v4 body. Layout (little-endian):
//   "ANETRAIL" (8 bytes) | u32 version (1) | u32 reserved (0) | u64 json_bytes | u64 data_bytes
//   | json (UTF-8 object) | data (blobs at the offsets the JSON lists)
// and it must end exactly at the end of the file.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ane {

inline constexpr char kTrailerMagic[8] = {'A', 'N', 'E', 'T', 'R', 'A', 'I', 'L'};
constexpr std::uint32_t kTrailerVersion = 1;
constexpr std::size_t kTrailerFixedBytes = 32;

struct TrailerBlob {
    std::string name;
    std::string dtype;  // "f32" or "u8"
    std::vector<std::int64_t> shape;
    std::span<const std::uint8_t> bytes;  // points into the file (read) or the caller's memory (write)
};

struct Trailer {
    nlohmann::json json = nlohmann::json::object();  // "config", "metadata", "blobs" (filled on write)
    std::vector<TrailerBlob> blobs;
};

bool starts_with_trailer_magic(std::span<const std::uint8_t> bytes);
// Parses a trailer that occupies exactly `bytes`; errors name `path`.
Trailer parse_trailer(std::span<const std::uint8_t> bytes, const std::string& path);
// Serialises the fixed part and the JSON; the blobs' bytes follow in order.
std::vector<std::uint8_t> encode_trailer_head(Trailer& trailer);

}  // namespace ane
