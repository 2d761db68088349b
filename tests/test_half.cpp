#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "ane/half.hpp"

using namespace ane;

// The compiler's own half type rounds to nearest even in hardware or its runtime library: the
// reference. clang before 15 has no _Float16 on x86-64, only the storage type __fp16.
#if defined(__clang__) && __clang_major__ < 15
using RefHalf = __fp16;
#else
using RefHalf = _Float16;
#endif

TEST(Half, Fp16ToFloatMatchesFloat16ForEveryBitPattern) {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        RefHalf ref;
        std::uint16_t bits = static_cast<std::uint16_t>(h);
        std::memcpy(&ref, &bits, 2);
        const float want = static_cast<float>(ref);
        const float got = fp16_to_float(bits);
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << h;
        } else {
            EXPECT_EQ(std::bit_cast<std::uint32_t>(got), std::bit_cast<std::uint32_t>(want)) << "bits " << h;
        }
    }
}

TEST(Half, EveryFp16RoundTripsThroughFloat) {
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const std::uint16_t bits = static_cast<std::uint16_t>(h);
        const std::uint16_t back = float_to_fp16(fp16_to_float(bits));
        if ((bits & 0x7C00) == 0x7C00 && (bits & 0x3FF)) {
            EXPECT_EQ(back & 0x7C00, 0x7C00);
            EXPECT_NE(back & 0x3FF, 0);
        } else {
            EXPECT_EQ(back, bits);
        }
    }
}

TEST(Half, FloatToFp16RoundsLikeFloat16) {
    std::mt19937 rng(1);
    std::vector<float> values = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.98023224e-8f,
                                 5.96046448e-8f, 6.1e-5f, 6.103515625e-05f, INFINITY, -INFINITY, 1e30f, -1e-30f};
    std::uniform_int_distribution<std::uint32_t> bits;
    for (int i = 0; i < 200000; ++i) {
        float f = std::bit_cast<float>(bits(rng));
        if (std::isnan(f)) continue;
        values.push_back(f);
        // Concentrate on the fp16 range, where rounding matters.
        values.push_back(std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), int(bits(rng) % 44) - 28));
    }
    for (float f : values) {
        const RefHalf ref = static_cast<RefHalf>(f);
        std::uint16_t want;
        std::memcpy(&want, &ref, 2);
        EXPECT_EQ(float_to_fp16(f), want) << "value " << f;
    }
    EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(NAN))));
}

TEST(Half, Bf16RoundsToNearestEvenAgainstDouble) {
    std::mt19937 rng(2);
    std::uniform_int_distribution<std::uint32_t> bits;
    for (int i = 0; i < 200000; ++i) {
        const float f = std::bit_cast<float>(bits(rng));
        if (!std::isfinite(f)) continue;
        const std::uint16_t b = float_to_bf16(f);
        // The two bf16 neighbours of f: truncation and the next value up in magnitude.
        const std::uint16_t lo = static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(f) >> 16);
        if (((lo + 1) & 0x7F80) == 0x7F80) continue;  // rounding up would reach inf
        const double a = bf16_to_float(lo), c = bf16_to_float(static_cast<std::uint16_t>(lo + 1));
        const double da = std::fabs(double(f) - a), dc = std::fabs(double(f) - c);
        if (da < dc) EXPECT_EQ(b, lo) << f;
        else if (dc < da) EXPECT_EQ(b, static_cast<std::uint16_t>(lo + 1)) << f;
        else EXPECT_EQ(b & 1, 0) << f;
    }
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
    EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
    EXPECT_EQ(bf16_to_float(float_to_bf16(-INFINITY)), -INFINITY);
}

// The bulk bf16 rounding (vectorised, no branch) agrees with the scalar one on every kind of
// float, NaN, infinities and subnormals included, odd length.
TEST(Half, BulkBf16EqualsTheScalarOne) {
    std::mt19937 rng(9);
    std::uniform_int_distribution<std::uint32_t> bits;
    std::vector<float> x(100003);
    for (auto& v : x) v = std::bit_cast<float>(bits(rng));
    x[0] = NAN, x[1] = -INFINITY, x[2] = INFINITY, x[3] = std::bit_cast<float>(0x7F7FFFFFu);  // rounds up to inf
    x[4] = std::bit_cast<float>(0x7F800001u);  // a signalling NaN comes out quiet
    std::vector<std::uint16_t> b(x.size());
    float_to_bf16(x.data(), b.data(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(b[i], float_to_bf16(x[i])) << i << ": " << x[i];
    EXPECT_EQ(b[3], 0x7F80u);
    EXPECT_TRUE(std::isnan(bf16_to_float(b[4])));
}

// The bulk conversions (F16C or AVX-512 where the CPU has them) agree with the scalar ones
// bit for bit, on every half and on floats around every rounding boundary, odd lengths included.
TEST(Half, BulkConversionsEqualTheScalarOnes) {
    std::vector<std::uint16_t> all(65536);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
    std::vector<float> f(all.size() + 3);
    fp16_to_float(all.data(), f.data(), all.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        const float want = fp16_to_float(all[i]);
        if (std::isnan(want))
            EXPECT_TRUE(std::isnan(f[i])) << i;
        else
            EXPECT_EQ(std::bit_cast<std::uint32_t>(f[i]), std::bit_cast<std::uint32_t>(want)) << i;
    }
    std::mt19937 rng(5);
    std::uniform_int_distribution<std::uint32_t> bits;
    std::vector<float> x(100003);
    for (auto& v : x) {
        v = std::bit_cast<float>(bits(rng));
        if (!std::isfinite(v)) v = 1.0f;
        v = std::ldexp(std::fmod(v, 2.0f), int(rng() % 40) - 30);  // subnormal .. overflow
    }
    std::vector<std::uint16_t> h(x.size());
    float_to_fp16(x.data(), h.data(), x.size());
    std::vector<float> r = x;
    round_to_fp16(r.data(), r.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(h[i], float_to_fp16(x[i])) << x[i] << " (" << fp16_conversion_isa() << ")";
        ASSERT_EQ(std::bit_cast<std::uint32_t>(r[i]), std::bit_cast<std::uint32_t>(fp16_to_float(float_to_fp16(x[i]))))
            << x[i];
    }
}
