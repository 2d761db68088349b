#include "ane/mil/weight_blob.hpp"

#include <cstring>
#include <stdexcept>

#include "ane/half.hpp"

namespace ane::mil {

namespace {
void put_u32(std::uint8_t* p, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) p[k] = std::uint8_t(v >> (8 * k));
}
std::uint32_t get_u32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v |= std::uint32_t(p[k]) << (8 * k);
    return v;
}
}  // namespace

std::vector<std::uint8_t> make_fp16_blob(const float* values, std::size_t n) {
    if (n * 2 > 0xFFFFFFFFu) throw std::runtime_error("weight blob of " + std::to_string(n) + " values is too large");
    std::vector<std::uint8_t> blob(kBlobHeaderBytes + 2 * n, 0);
    blob[0] = 0x01;
    blob[4] = 0x02;
    put_u32(&blob[64], 0xDEADBEEFu);
    blob[68] = 0x01;
    put_u32(&blob[72], std::uint32_t(2 * n));
    put_u32(&blob[80], std::uint32_t(kBlobHeaderBytes));
    std::vector<std::uint16_t> half(n);
    float_to_fp16(values, half.data(), n);
    if (n) std::memcpy(blob.data() + kBlobHeaderBytes, half.data(), 2 * n);
    return blob;
}

std::vector<float> read_fp16_blob(const std::vector<std::uint8_t>& blob, std::uint64_t offset, std::int64_t elements) {
    if (offset != kBlobDescriptorOffset)
        throw std::runtime_error("offset " + std::to_string(offset) + " is not the descriptor's (64)");
    if (blob.size() < kBlobHeaderBytes)
        throw std::runtime_error("blob of " + std::to_string(blob.size()) + " bytes is shorter than its header");
    if (get_u32(&blob[64]) != 0xDEADBEEFu) throw std::runtime_error("blob descriptor has no DEADBEEF magic");
    const std::uint64_t size = get_u32(&blob[72]), data = get_u32(&blob[80]);
    if (size != std::uint64_t(elements) * 2)
        throw std::runtime_error("blob holds " + std::to_string(size) + " bytes, the tensor needs " +
                                 std::to_string(elements * 2));
    if (data < kBlobHeaderBytes || data > blob.size() || blob.size() - data < size)
        throw std::runtime_error("blob data at " + std::to_string(data) + " + " + std::to_string(size) +
                                 " bytes lies outside its " + std::to_string(blob.size()) + " bytes");
    std::vector<std::uint16_t> half(static_cast<std::size_t>(elements));
    if (elements) std::memcpy(half.data(), blob.data() + data, std::size_t(size));
    std::vector<float> out(half.size());
    fp16_to_float(half.data(), out.data(), half.size());
    return out;
}

}  // namespace ane::mil
