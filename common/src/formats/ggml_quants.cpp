#include "ane/formats/ggml_quants.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ane/error.hpp"
#include "ane/half.hpp"

namespace ane::ggml {

namespace {

constexpr int kQK = 32;    // elements per block of the classic quants
constexpr int kQKK = 256;  // elements per super-block of the K-quants

float half_at(const std::uint8_t* p) {
    std::uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16_to_float(h);
}

void dequant_q8_0(const std::uint8_t* b, float* y) {  // 34 bytes: fp16 d, int8 q[32]
    const float d = half_at(b);
    for (int i = 0; i < kQK; ++i) y[i] = d * float(static_cast<std::int8_t>(b[2 + i]));
}

void dequant_q4_0(const std::uint8_t* b, float* y) {  // 18 bytes: fp16 d, 16 bytes of nibbles
    const float d = half_at(b);
    for (int i = 0; i < kQK / 2; ++i) {
        y[i] = d * float((b[2 + i] & 0xF) - 8);
        y[i + kQK / 2] = d * float((b[2 + i] >> 4) - 8);
    }
}

void dequant_q4_1(const std::uint8_t* b, float* y) {  // 20 bytes: fp16 d, fp16 m, 16 bytes of nibbles
    const float d = half_at(b), m = half_at(b + 2);
    for (int i = 0; i < kQK / 2; ++i) {
        y[i] = d * float(b[4 + i] & 0xF) + m;
        y[i + kQK / 2] = d * float(b[4 + i] >> 4) + m;
    }
}

// Q5_0 and Q5_1: value i's fifth bit is bit i of the little-endian word qh.
void five_bit_values(const std::uint8_t* qh_bytes, const std::uint8_t* qs, int* q) {
    std::uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);
    for (int i = 0; i < kQK / 2; ++i) {
        q[i] = int(qs[i] & 0xF) | int(((qh >> i) & 1u) << 4);
        q[i + kQK / 2] = int(qs[i] >> 4) | int(((qh >> (i + kQK / 2)) & 1u) << 4);
    }
}

void dequant_q5_0(const std::uint8_t* b, float* y) {  // 22 bytes: fp16 d, qh[4], 16 bytes of nibbles
    const float d = half_at(b);
    int q[kQK];
    five_bit_values(b + 2, b + 6, q);
    for (int i = 0; i < kQK; ++i) y[i] = d * float(q[i] - 16);
}

void dequant_q5_1(const std::uint8_t* b, float* y) {  // 24 bytes: fp16 d, fp16 m, qh[4], 16 bytes of nibbles
    const float d = half_at(b), m = half_at(b + 2);
    int q[kQK];
    five_bit_values(b + 4, b + 8, q);
    for (int i = 0; i < kQK; ++i) y[i] = d * float(q[i]) + m;
}

void dequant_q4_k(const std::uint8_t* b, float* y) {  // 144 bytes: d, dmin, scales[12], qs[128]
    const float d = half_at(b), dmin = half_at(b + 2);
    const std::uint8_t* scales = b + 4;
    const std::uint8_t* q = b + 16;
    for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, q += 32) {
        int sc, m;
        scale_min_k4(is, scales, sc, m);
        const float d1 = d * float(sc), m1 = dmin * float(m);
        scale_min_k4(is + 1, scales, sc, m);
        const float d2 = d * float(sc), m2 = dmin * float(m);
        for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
}

void dequant_q5_k(const std::uint8_t* b, float* y) {  // 176 bytes: d, dmin, scales[12], qh[32], qs[128]
    const float d = half_at(b), dmin = half_at(b + 2);
    const std::uint8_t* scales = b + 4;
    const std::uint8_t* qh = b + 16;
    const std::uint8_t* ql = b + 48;
    std::uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        int sc, m;
        scale_min_k4(is, scales, sc, m);
        const float d1 = d * float(sc), m1 = dmin * float(m);
        scale_min_k4(is + 1, scales, sc, m);
        const float d2 = d * float(sc), m2 = dmin * float(m);
        for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
}

void dequant_q6_k(const std::uint8_t* b, float* y) {  // 210 bytes: ql[128], qh[64], int8 scales[16], d
    const std::uint8_t* ql = b;
    const std::uint8_t* qh = b + 128;
    const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
    const float d = half_at(b + 208);
    for (int n = 0; n < kQKK; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * float(sc[is]) * float(q1);
            y[l + 32] = d * float(sc[is + 2]) * float(q2);
            y[l + 64] = d * float(sc[is + 4]) * float(q3);
            y[l + 96] = d * float(sc[is + 6]) * float(q4);
        }
    }
}

}  // namespace

void scale_min_k4(int j, const std::uint8_t* q, int& scale, int& min) {
    if (j < 4) {
        scale = q[j] & 63;
        min = q[j + 4] & 63;
    } else {
        scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

std::string type_name(std::uint32_t type) {
    switch (Type(type)) {
        case Type::F32: return "F32";
        case Type::F16: return "F16";
        case Type::Q4_0: return "Q4_0";
        case Type::Q4_1: return "Q4_1";
        case Type::Q5_0: return "Q5_0";
        case Type::Q5_1: return "Q5_1";
        case Type::Q8_0: return "Q8_0";
        case Type::Q8_1: return "Q8_1";
        case Type::Q2_K: return "Q2_K";
        case Type::Q3_K: return "Q3_K";
        case Type::Q4_K: return "Q4_K";
        case Type::Q5_K: return "Q5_K";
        case Type::Q6_K: return "Q6_K";
        case Type::Q8_K: return "Q8_K";
        case Type::BF16: return "BF16";
    }
    return "type " + std::to_string(type);
}

bool type_layout(std::uint32_t type, std::size_t& elems, std::size_t& bytes) {
    switch (Type(type)) {
        case Type::F32: elems = 1, bytes = 4; return true;
        case Type::F16:
        case Type::BF16: elems = 1, bytes = 2; return true;
        case Type::Q8_0: elems = kQK, bytes = 34; return true;
        case Type::Q4_0: elems = kQK, bytes = 18; return true;
        case Type::Q4_1: elems = kQK, bytes = 20; return true;
        case Type::Q5_0: elems = kQK, bytes = 22; return true;
        case Type::Q5_1: elems = kQK, bytes = 24; return true;
        case Type::Q4_K: elems = kQKK, bytes = 144; return true;
        case Type::Q5_K: elems = kQKK, bytes = 176; return true;
        case Type::Q6_K: elems = kQKK, bytes = 210; return true;
        default: return false;
    }
}

void dequantize(Type type, const std::uint8_t* src, float* dst, std::size_t n) {
    std::size_t be = 0, bb = 0;
    require(type_layout(std::uint32_t(type), be, bb), "cannot decode ggml ", type_name(std::uint32_t(type)));
    require(n % be == 0, "ggml ", type_name(std::uint32_t(type)), ": ", n, " elements is not a whole number of blocks");
    switch (type) {
        case Type::F32: std::memcpy(dst, src, n * 4); return;
        case Type::F16:
        case Type::BF16: {
            // Through an aligned buffer to the bulk (vectorised) conversions.
            std::uint16_t h[256];
            for (std::size_t i = 0; i < n; i += 256) {
                const std::size_t m = std::min<std::size_t>(256, n - i);
                std::memcpy(h, src + 2 * i, 2 * m);
                if (type == Type::F16)
                    fp16_to_float(h, dst + i, m);
                else
                    bf16_to_float(h, dst + i, m);
            }
            return;
        }
        default: break;
    }
    void (*block)(const std::uint8_t*, float*) = nullptr;
    switch (type) {
        case Type::Q8_0: block = dequant_q8_0; break;
        case Type::Q4_0: block = dequant_q4_0; break;
        case Type::Q4_1: block = dequant_q4_1; break;
        case Type::Q5_0: block = dequant_q5_0; break;
        case Type::Q5_1: block = dequant_q5_1; break;
        case Type::Q4_K: block = dequant_q4_k; break;
        case Type::Q5_K: block = dequant_q5_k; break;
        case Type::Q6_K: block = dequant_q6_k; break;
        default: break;
    }
    for (std::size_t i = 0; i < n / be; ++i) block(src + i * bb, dst + i * be);
}

void quantize_q8_0(const float* src, std::uint8_t* dst, std::size_t n) {
    require(n % kQK == 0, "Q8_0: ", n, " elements is not a multiple of 32");
    for (std::size_t b = 0; b < n / kQK; ++b, src += kQK, dst += 34) {
        float amax = 0.0f;
        for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(src[i]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const std::uint16_t dh = float_to_fp16(d);
        std::memcpy(dst, &dh, 2);
        for (int i = 0; i < kQK; ++i) dst[2 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::lround(src[i] * id)));
    }
}

void quantize_q4_0(const float* src, std::uint8_t* dst, std::size_t n) {
    require(n % kQK == 0, "Q4_0: ", n, " elements is not a multiple of 32");
    for (std::size_t b = 0; b < n / kQK; ++b, src += kQK, dst += 18) {
        // The value of largest magnitude maps to -8, so its sign decides the scale's.
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < kQK; ++i)
            if (std::fabs(src[i]) > amax) amax = std::fabs(src[i]), max = src[i];
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const std::uint16_t dh = float_to_fp16(d);
        std::memcpy(dst, &dh, 2);
        auto q = [&](float x) { return std::min(15, int(static_cast<std::int8_t>(x * id + 8.5f))); };
        for (int i = 0; i < kQK / 2; ++i) dst[2 + i] = std::uint8_t(q(src[i]) | (q(src[i + kQK / 2]) << 4));
    }
}

void quantize(Type type, const float* src, std::uint8_t* dst, std::size_t n) {
    switch (type) {
        case Type::F32: std::memcpy(dst, src, n * 4); return;
        case Type::F16: {
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint16_t h = float_to_fp16(src[i]);
                std::memcpy(dst + 2 * i, &h, 2);
            }
            return;
        }
        case Type::BF16: {
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint16_t h = float_to_bf16(src[i]);
                std::memcpy(dst + 2 * i, &h, 2);
            }
            return;
        }
        case Type::Q8_0: quantize_q8_0(src, dst, n); return;
        case Type::Q4_0: quantize_q4_0(src, dst, n); return;
        default: throw error("cannot encode ggml ", type_name(std::uint32_t(type)));
    }
}

}  // namespace ane::ggml
