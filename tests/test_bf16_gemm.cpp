// Our AVX512_BF16 product kernel (bf16_gemm_avx512.cpp) against a double-precision reference on
// the bf16-rounded operands, and the cpu device's weights kept packed between products.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ane/device/bf16_gemm_avx512.hpp"
#include "ane/device/cpu_device.hpp"
#include "ane/device/gemm.hpp"
#include "ane/half.hpp"

namespace {

float bf16(float x) { return ane::bf16_to_float(ane::float_to_bf16(x)); }

struct Case {
    int M, N, K;
    bool ta, tb;
    int lda() const { return ta ? M + 3 : K + 2; }  // padded leading dimensions
    int ldb() const { return tb ? K + 1 : N + 5; }
    int ldc() const { return N + 4; }
};

struct Data {
    std::vector<float> A, B, C;
};

Data make(const Case& c, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    Data d;
    d.A.resize(std::size_t(c.ta ? c.K : c.M) * c.lda());
    d.B.resize(std::size_t(c.tb ? c.N : c.K) * c.ldb());
    d.C.resize(std::size_t(c.M) * c.ldc());
    for (auto* v : {&d.A, &d.B, &d.C})
        for (float& x : *v) x = u(rng);
    return d;
}

// alpha op(A) op(B) + beta C in double, on the operands rounded to bf16; and the sum of the
// products' magnitudes (the scale of the fp32 accumulation's error) for each element.
void reference(const Case& c, const Data& d, float alpha, float beta, std::vector<double>& want,
               std::vector<double>& scale) {
    want.assign(d.C.begin(), d.C.end());
    scale.assign(d.C.size(), 0.0);
    for (int i = 0; i < c.M; ++i)
        for (int j = 0; j < c.N; ++j) {
            double s = 0, m = 0;
            for (int k = 0; k < c.K; ++k) {
                const double a = bf16(c.ta ? d.A[std::size_t(k) * c.lda() + i] : d.A[std::size_t(i) * c.lda() + k]);
                const double b = bf16(c.tb ? d.B[std::size_t(j) * c.ldb() + k] : d.B[std::size_t(k) * c.ldb() + j]);
                s += a * b;
                m += std::fabs(a * b);
            }
            const std::size_t at = std::size_t(i) * c.ldc() + j;
            want[at] = alpha * s + (beta == 0.0f ? 0.0 : beta * want[at]);
            scale[at] = std::fabs(alpha) * m + (beta == 0.0f ? 0.0 : std::fabs(beta * d.C[at])) + 1e-6;
        }
}

// Every element of op(A) op(B) within fp32 accumulation's error of the reference; the padding
// of each row of C (past N) as it was.
void expect_matches(const Case& c, const Data& before, const std::vector<float>& got, float alpha, float beta) {
    std::vector<double> want, scale;
    reference(c, before, alpha, beta, want, scale);
    for (int i = 0; i < c.M; ++i) {
        for (int j = 0; j < c.N; ++j) {
            const std::size_t at = std::size_t(i) * c.ldc() + j;
            ASSERT_LE(std::fabs(got[at] - want[at]), 1e-6 * c.K * scale[at] + 1e-6)
                << c.M << "x" << c.N << "x" << c.K << " ta " << c.ta << " tb " << c.tb << " at " << i << "," << j;
        }
        for (int j = c.N; j < c.ldc(); ++j)
            ASSERT_EQ(got[std::size_t(i) * c.ldc() + j], before.C[std::size_t(i) * c.ldc() + j]) << "padding written";
    }
}

}  // namespace

TEST(Bf16Kernel, ProductsAreTheReferenceOnBf16RoundedOperands) {
    if (!ane::bf16::available()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
    // Edges of the 8 x 48 tile and of the blocks of k (up to 512: K 513 is two, the second
    // odd); K odd; a C wide enough (N 1700) that blocks of k go outermost, and Ks of several
    // blocks (640, 1000) with rows outermost.
    const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {8, 48, 2}, {9, 49, 3}, {17, 100, 513},
                             {64, 96, 640}, {33, 47, 1000}, {20, 1700, 600}};
    for (const auto& s : shapes)
        for (int t = 0; t < 4; ++t)
            for (const int threads : {1, 2}) {
                const Case c{s[0], s[1], s[2], bool(t & 1), bool(t & 2)};
                const float alpha = 0.75f, beta = t == 3 ? 0.0f : 0.5f;
                Data d = make(c, unsigned(s[0] * 131 + s[1] * 7 + s[2] + t));
                if (beta == 0.0f)  // C is not read where beta is 0
                    for (int i = 0; i < c.M; ++i)
                        d.C[std::size_t(i) * c.ldc()] = std::numeric_limits<float>::quiet_NaN();
                std::vector<float> got = d.C;
                ane::bf16::gemm(c.ta, c.tb, c.M, c.N, c.K, alpha, d.A.data(), c.lda(), d.B.data(), c.ldb(), beta,
                                got.data(), c.ldc(), threads);
                expect_matches(c, d, got, alpha, beta);
            }
}

TEST(Bf16Kernel, APackedBGivesTheSameBitsAsAProductThatPacksIt) {
    if (!ane::bf16::available()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
    for (const bool tb : {false, true}) {
        const Case c{50, 130, 700, false, tb};
        const Data d = make(c, 3 + tb);
        std::vector<float> once = d.C, packed = d.C;
        ane::bf16::gemm(false, tb, c.M, c.N, c.K, 1.0f, d.A.data(), c.lda(), d.B.data(), c.ldb(), 1.0f, once.data(),
                        c.ldc(), 2);
        ane::bf16::PackedB b;
        ane::bf16::pack_b(tb, c.K, c.N, d.B.data(), c.ldb(), b, 2);
        for (int r = 0; r < 2; ++r) {  // the packed B serves every product
            packed = d.C;
            ane::bf16::gemm(false, c.M, 1.0f, d.A.data(), c.lda(), b, 1.0f, packed.data(), c.ldc(), 2);
            EXPECT_EQ(std::memcmp(once.data(), packed.data(), once.size() * sizeof(float)), 0) << "tb " << tb;
        }
    }
}

TEST(Bf16Kernel, OperandsAreRoundedAsFloatToBf16Rounds) {
    if (!ane::bf16::available()) GTEST_SKIP() << "this CPU has no AVX512_BF16";
    // One product a value: a x 1 is the value rounded (ties to even; a NaN stays a NaN).
    const float values[] = {1.0f, 1.00390625f /* tie, to even: 1 */, 1.01171875f /* tie, up */, -3.14159f,
                            65504.7f, 1e-30f, std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN()};
    for (const float v : values) {
        const float one = 1.0f;
        float out = 0.0f;
        ane::bf16::gemm(false, false, 1, 1, 1, 1.0f, &v, 1, &one, 1, 0.0f, &out, 1, 1);
        if (std::isnan(v)) {
            EXPECT_TRUE(std::isnan(out));
            continue;
        }
        EXPECT_EQ(out, bf16(v)) << v;
    }
}

TEST(Bf16Kernel, OneDnnAndOurKernelAgree) {
    if (!ane::bf16_missing().empty() || !ane::bf16::available()) GTEST_SKIP() << "no bf16 products here";
    const Case c{70, 90, 400, true, false};
    const Data d = make(c, 5);
    std::vector<float> ours = d.C, onednn = d.C;
    ane::Bf16Gemm best, reference_library(ane::Bf16Gemm::Kernel::onednn);
    EXPECT_STREQ(best.kernel_name(), "our AVX512_BF16 kernel");
    EXPECT_STREQ(reference_library.kernel_name(), "oneDNN");
    best(c.ta, c.tb, c.M, c.N, c.K, 1.0f, d.A.data(), c.lda(), d.B.data(), c.ldb(), 0.5f, ours.data(), c.ldc());
    reference_library(c.ta, c.tb, c.M, c.N, c.K, 1.0f, d.A.data(), c.lda(), d.B.data(), c.ldb(), 0.5f, onednn.data(),
                      c.ldc());
    for (std::size_t i = 0; i < ours.size(); ++i) ASSERT_NEAR(ours[i], onednn[i], 1e-4) << i;
}

TEST(Bf16Kernel, TheCpuDeviceRepacksAWeightAfterWeightsChanged) {
    if (!ane::bf16_missing().empty()) GTEST_SKIP() << "no bf16 products here";
    ane::DeviceOptions o;
    o.threads = 2;
    o.precision = ane::Precision::bf16;
    auto device = ane::make_device("cpu", o);
    const int M = 16, N = 40, K = 64;
    std::vector<float> X(std::size_t(M) * K), W(std::size_t(N) * K), dY(std::size_t(M) * N);
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto* v : {&X, &W, &dY})
        for (float& x : *v) x = u(rng);
    const auto check = [&] {
        std::vector<float> Y(std::size_t(M) * N), dX(std::size_t(M) * K);
        device->weight_forward(X.data(), W.data(), M, N, K, Y.data());
        device->weight_input_grad(dY.data(), W.data(), M, N, K, dX.data());
        for (int m = 0; m < M; ++m) {
            for (int n = 0; n < N; ++n) {
                double s = 0;
                for (int k = 0; k < K; ++k) s += double(bf16(X[m * K + k])) * bf16(W[n * K + k]);
                ASSERT_NEAR(Y[m * N + n], s, 1e-4) << m << "," << n;
            }
            for (int k = 0; k < K; ++k) {
                double s = 0;
                for (int n = 0; n < N; ++n) s += double(bf16(dY[m * N + n])) * bf16(W[n * K + k]);
                ASSERT_NEAR(dX[m * K + k], s, 1e-4) << m << "," << k;
            }
        }
    };
    check();
    for (float& w : W) w = -2.0f * w + 0.25f;  // an optimizer step
    device->weights_changed();
    check();
}

TEST(Bf16Kernel, GemmOnednnKeepsOneDnnsBf16Kernel) {
    if (!ane::bf16_missing().empty()) GTEST_SKIP() << "no bf16 products here";
    EXPECT_STREQ(ane::Gemm(ane::GemmLibrary::onednn, ane::Precision::bf16).bf16_kernel_name(), "oneDNN");
    EXPECT_STREQ(ane::Gemm(ane::GemmLibrary::automatic, ane::Precision::bf16).bf16_kernel_name(),
                 ane::bf16::available() ? "our AVX512_BF16 kernel" : "oneDNN");
    EXPECT_STREQ(ane::Gemm(ane::GemmLibrary::automatic).bf16_kernel_name(), "none");
}
