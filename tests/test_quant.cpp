// Weights kept encoded for inference: the encoders, the row kernels of every ISA the CPU has
// against a double-precision reference on the decoded rows, the device products (one token
// and a batch), the decoder on encoded weights against float32, and a GGUF's blocks kept.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "ane/device/cpu_device.hpp"
#include "ane/device/quant_matvec.hpp"
#include "ane/error.hpp"
#include "ane/formats/artifact.hpp"
#include "ane/formats/gguf.hpp"
#include "ane/half.hpp"
#include "ane/model/decoder.hpp"
#include "ane/model/inference_weights.hpp"
#include "test_util.hpp"

using namespace ane;

namespace {

Tensor random_matrix(int rows, int cols, unsigned seed, float scale = 0.5f) {
    Tensor t({rows, cols});
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = d(rng);
    return t;
}

// Blocks of random bytes with small normal fp16 scales (a K-quant's super-block scale and min;
// a Q5_0 block's scale; a Q4_1/Q5_1 block's scale and min).
QuantMatrix random_blocks(ggml::Type type, int rows, int cols, unsigned seed) {
    std::size_t be = 0, bb = 0;
    ggml::type_layout(std::uint32_t(type), be, bb);
    std::vector<std::uint8_t> bytes(std::size_t(rows) * cols / be * bb);
    std::mt19937 rng(seed);
    for (auto& b : bytes) b = std::uint8_t(rng());
    const std::uint16_t d = float_to_fp16(0.01f), dmin = float_to_fp16(0.005f);
    for (std::size_t b = 0; b < bytes.size() / bb; ++b) {
        std::uint8_t* blk = bytes.data() + b * bb;
        if (type == ggml::Type::Q6_K) {
            std::memcpy(blk + bb - 2, &d, 2);  // Q6_K ends with its scale
        } else if (type == ggml::Type::Q5_0) {
            std::memcpy(blk, &d, 2);
        } else {
            std::memcpy(blk, &d, 2);
            std::memcpy(blk + 2, &dmin, 2);
        }
    }
    return QuantMatrix::from_blocks(type, rows, cols, bytes.data());
}

std::vector<MatvecIsa> isas_here() {
    std::vector<MatvecIsa> isas{MatvecIsa::portable};
    if (best_matvec_isa() != MatvecIsa::portable) isas.push_back(MatvecIsa::avx2);
    if (best_matvec_isa() == MatvecIsa::avx512) isas.push_back(MatvecIsa::avx512);
    return isas;
}

// Every integer dot-product kernel this CPU runs beside `isa`'s float kernels (none: float only).
std::vector<Int8Dot> int8_kernels_here(MatvecIsa isa) {
    std::vector<Int8Dot> kinds{Int8Dot::none};
    if (isa == MatvecIsa::portable || best_int8_dot() == Int8Dot::none) return kinds;
    kinds.push_back(Int8Dot::avx2);
#if defined(__x86_64__)
    unsigned a = 0, b = 0, c = 0, d = 0;  // AVX-VNNI: CPUID leaf 7, subleaf 1, EAX bit 4
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1u)) kinds.push_back(Int8Dot::avx_vnni);
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl")) kinds.push_back(Int8Dot::avx512_vnni);
#endif
    return kinds;
}

TEST(Quant, TheVectorQuantizationIsWithinHalfAStep) {
    const Tensor x = random_matrix(1, 96, 5, 2.0f);
    std::vector<float> back(96);
    quant_vector_round_trip(x.data(), 96, back.data());
    for (int b = 0; b < 3; ++b) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
        for (int i = 0; i < 32; ++i) EXPECT_NEAR(back[b * 32 + i], x[b * 32 + i], amax / 127 * 0.5001f);
    }
}

// y = alpha W x + beta y0 in double on the decoded rows, and the largest sum of |w x| of a row.
std::vector<double> reference(const QuantMatrix& W, const float* x, const float* y0, float alpha, float beta,
                              double& scale) {
    const Tensor w = W.decode();
    std::vector<double> y(std::size_t(W.rows()));
    scale = 1.0;
    for (int r = 0; r < W.rows(); ++r) {
        double dot = 0, mag = 0;
        for (int k = 0; k < W.cols(); ++k) {
            dot += double(w.row(r)[k]) * x[k];
            mag += std::fabs(double(w.row(r)[k]) * x[k]);
        }
        y[std::size_t(r)] = alpha * dot + beta * double(y0[r]);
        scale = std::max(scale, mag);
    }
    return y;
}

ModelConfig quant_config(bool tied) {
    ModelConfig c = test::tiny_config(tied);
    c.dim = 64;
    c.hidden = 80;
    c.heads = 4;
    c.kv_heads = 2;
    c.head_dim = 16;
    c.vocab = 80;
    c.seq = 32;
    c.layers = 2;
    c.residual_scale = 1.0;
    return c;
}

}  // namespace

TEST(Quant, Q4_0EncodesAsLlamaCppsReferenceQuantizer) {
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = float(i - 20) * 0.1f;  // -2.0 has the largest magnitude
    std::vector<std::uint8_t> q(18);
    ggml::quantize_q4_0(x.data(), q.data(), 32);
    std::uint16_t dh;
    std::memcpy(&dh, q.data(), 2);
    EXPECT_FLOAT_EQ(fp16_to_float(dh), fp16_to_float(float_to_fp16(-2.0f / -8.0f)));
    EXPECT_EQ(q[2] & 0xF, 0);  // -2.0 / 0.25 + 8 = 0
    std::vector<float> y(32);
    ggml::dequantize(ggml::Type::Q4_0, q.data(), y.data(), 32);
    for (int i = 0; i < 32; ++i) EXPECT_NEAR(y[i], x[i], 0.125f + 1e-3f) << i;
    EXPECT_THROW(ggml::quantize_q4_0(x.data(), q.data(), 31), Error);
}

TEST(Quant, EveryEncodingRoundTripsWithinItsStep) {
    const Tensor t = random_matrix(5, 96, 3);
    for (auto [type, tol] : {std::pair{ggml::Type::F32, 0.0}, {ggml::Type::F16, 1e-3}, {ggml::Type::BF16, 8e-3},
                             {ggml::Type::Q8_0, 0.02}, {ggml::Type::Q4_0, 0.3}}) {
        const QuantMatrix m = QuantMatrix::encode(t, type);
        EXPECT_EQ(m.rows(), 5);
        EXPECT_EQ(m.cols(), 96);
        const Tensor back = m.decode();
        for (std::int64_t i = 0; i < t.numel(); ++i)
            ASSERT_NEAR(back[i], t[i], tol * std::max(1.0f, std::fabs(t[i]))) << m.type_name() << " " << i;
    }
    EXPECT_FALSE(QuantMatrix::can_encode(ggml::Type::Q8_0, 100));
    EXPECT_THROW(QuantMatrix::encode(random_matrix(2, 100, 1), ggml::Type::Q4_0), Error);
    EXPECT_THROW(parse_weight_type("q5_1"), UsageError);
    EXPECT_EQ(parse_weight_type("q4_0"), ggml::Type::Q4_0);
}

TEST(Quant, EveryKernelOnEveryEncodingMatchesTheDoubleReference) {
    for (int K : {32, 64, 96, 256, 512}) {
        const int N = 7;
        const Tensor t = random_matrix(N, K, unsigned(K));
        const Tensor x = random_matrix(1, K, unsigned(K) + 1, 1.0f);
        const Tensor y0 = random_matrix(1, N, unsigned(K) + 2, 1.0f);
        std::vector<QuantMatrix> matrices;
        for (auto type : {ggml::Type::F32, ggml::Type::F16, ggml::Type::BF16, ggml::Type::Q8_0, ggml::Type::Q4_0})
            matrices.push_back(QuantMatrix::encode(t, type));
        for (auto type : {ggml::Type::Q5_0, ggml::Type::Q4_1, ggml::Type::Q5_1})
            matrices.push_back(random_blocks(type, N, K, unsigned(K) + 8));
        if (K % 256 == 0)
            for (auto type : {ggml::Type::Q4_K, ggml::Type::Q5_K, ggml::Type::Q6_K})
                matrices.push_back(random_blocks(type, N, K, unsigned(K) + 9));
        // The integer dot products multiply by x as they quantize it.
        std::vector<float> xq(static_cast<std::size_t>(K)), xk(static_cast<std::size_t>(K));
        quant_vector_round_trip(x.data(), K, xq.data());
        if (K % 256 == 0) k_vector_round_trip(x.data(), K, xk.data());  // what the K-quants multiply by
        for (const QuantMatrix& m : matrices)
            for (MatvecIsa isa : isas_here())
                for (Int8Dot int8 : int8_kernels_here(isa))
                    for (auto [alpha, beta] : {std::pair{1.0f, 0.0f}, {0.5f, 1.0f}}) {
                        const bool q = m.type() == ggml::Type::Q8_0 || m.type() == ggml::Type::Q4_0 ||
                                       m.type() == ggml::Type::Q5_0 || m.type() == ggml::Type::Q4_1 ||
                                       m.type() == ggml::Type::Q5_1;
                        const bool k = m.type() == ggml::Type::Q4_K || m.type() == ggml::Type::Q5_K ||
                                       m.type() == ggml::Type::Q6_K;
                        const float* input = int8 == Int8Dot::none ? x.data() : q ? xq.data() : k ? xk.data() : x.data();
                        double scale = 0;
                        const auto want = reference(m, input, y0.data(), alpha, beta, scale);
                        std::vector<float> y(y0.data(), y0.data() + N);
                        if (beta == 0.0f) std::fill(y.begin(), y.end(), NAN);  // beta 0 never reads y
                        quant_matvec_rows(isa, m, x.data(), 0, N, y.data(), alpha, beta, int8);
                        for (int r = 0; r < N; ++r)
                            ASSERT_NEAR(y[std::size_t(r)], want[std::size_t(r)], 2e-6 * scale)
                                << m.type_name() << " " << matvec_isa_name(isa) << " int8 " << int8_dot_name(int8)
                                << " K=" << K << " row " << r;
                    }
    }
}

// The rows8 layout holds the same values, and every kernel (VNNI on groups of 8 rows, AVX2 on
// Q4_0's, or the decoded fallback) gives the product on the quantized vector; the pool splits at groups.
TEST(Quant, TheRows8LayoutKeepsTheValuesAndItsKernelsMatchTheReference) {
    for (int K : {32, 96, 288, 768})
        for (auto type : {ggml::Type::Q8_0, ggml::Type::Q4_0}) {
            const int N = 40;
            const QuantMatrix flat = QuantMatrix::encode(random_matrix(N, K, unsigned(K) + 3), type);
            QuantMatrix m = flat;
            ASSERT_TRUE(QuantMatrix::can_interleave(type, N));
            m.interleave_rows8();
            EXPECT_EQ(m.layout(), QuantMatrix::Layout::rows8);
            EXPECT_EQ(m.bytes(), flat.bytes());
            const Tensor a = flat.decode(), b = m.decode();
            ASSERT_TRUE(a.bit_equal(b)) << flat.type_name() << " K=" << K;
            const Tensor x = random_matrix(1, K, unsigned(K) + 4, 1.0f);
            const Tensor y0 = random_matrix(1, N, unsigned(K) + 5, 1.0f);
            std::vector<float> xq(static_cast<std::size_t>(K));
            quant_vector_round_trip(x.data(), K, xq.data());
            for (Int8Dot int8 : int8_kernels_here(best_matvec_isa())) {
                const bool integer = rows8_integer(int8, type);
                double scale = 0;
                const auto want = reference(flat, integer ? xq.data() : x.data(), y0.data(), 0.5f, 1.0f, scale);
                std::vector<float> y(y0.data(), y0.data() + N);
                quant_matvec_rows(best_matvec_isa(), m, x.data(), 8, 32, y.data(), 0.5f, 1.0f, int8);
                for (int r = 0; r < N; ++r) {
                    const double expect = r >= 8 && r < 32 ? want[std::size_t(r)] : double(y0[r]);
                    ASSERT_NEAR(y[std::size_t(r)], expect, 2e-6 * scale)
                        << flat.type_name() << " int8 " << int8_dot_name(int8) << " K=" << K << " row " << r;
                }
            }
            if (rows8_integer(best_int8_dot(), type)) {
                SpinPool pool(2);
                const QuantMatrix big = [&] {
                    QuantMatrix q = QuantMatrix::encode(random_matrix(1000, K, 9), type);
                    q.interleave_rows8();
                    return q;
                }();
                std::vector<float> one(1000), all(1000);
                quant_matvec_rows(best_matvec_isa(), big, x.data(), 0, 1000, one.data(), 1.0f, 0.0f, best_int8_dot());
                quant_matvec(pool, big, x.data(), all.data(), 1.0f, 0.0f);
                for (int r = 0; r < 1000; ++r) ASSERT_EQ(one[std::size_t(r)], all[std::size_t(r)]) << r;
            }
        }
}

// Whether the cpu device's product with m takes integer dot products (on each token quantized
// to Q8_0 blocks): Q8_0/Q4_0 wherever the CPU has the integer kernels (AVX2 and up).
bool k_quant(const QuantMatrix& m) {
    return m.type() == ggml::Type::Q4_K || m.type() == ggml::Type::Q5_K || m.type() == ggml::Type::Q6_K;
}

bool takes_int8(const QuantMatrix& m, int /*M*/) {
    const ggml::Type t = m.type();
    const Int8Dot kind = best_int8_dot();
    // Rows regrouped by 8 have integer kernels with VNNI (and Q4_0's with AVX2); else decoded.
    if (m.layout() == QuantMatrix::Layout::rows8 && !rows8_integer(kind, t)) return false;
    return (t == ggml::Type::Q8_0 || t == ggml::Type::Q4_0 || t == ggml::Type::Q5_0 || t == ggml::Type::Q4_1 ||
            t == ggml::Type::Q5_1 || k_quant(m)) &&
           best_int8_dot() != Int8Dot::none;
}

// Every token of X quantized as m's integer kernels quantize it (Q8_0 or, for the K-quants,
// Q8_K blocks) and back.
Tensor round_trip_rows(const Tensor& X, const QuantMatrix& m) {
    Tensor out = X;
    for (std::int64_t r = 0; r < X.rows(); ++r)
        (k_quant(m) ? k_vector_round_trip : quant_vector_round_trip)(X.row(r), int(X.cols()), out.row(r));
    return out;
}

TEST(Quant, TheDeviceProductsMatchTheDecodedFloat32Product) {
    CpuDevice dev(2, GemmLibrary::automatic);
    const int N = 304;
    for (auto [type, rows8] : {std::pair{ggml::Type::F16, false}, {ggml::Type::Q8_0, false}, {ggml::Type::Q4_0, false},
                               {ggml::Type::Q8_0, true}, {ggml::Type::Q4_0, true}, {ggml::Type::Q5_0, false},
                               {ggml::Type::Q4_1, false}, {ggml::Type::Q5_1, false}, {ggml::Type::Q4_K, false},
                               {ggml::Type::Q5_K, false}, {ggml::Type::Q6_K, false}}) {
        const bool k = type == ggml::Type::Q4_K || type == ggml::Type::Q5_K || type == ggml::Type::Q6_K;
        const int K = k ? 512 : 128;
        const bool blocks_only = k || type == ggml::Type::Q5_0 || type == ggml::Type::Q4_1 || type == ggml::Type::Q5_1;
        QuantMatrix m = blocks_only ? random_blocks(type, N, K, 11) : QuantMatrix::encode(random_matrix(N, K, 11), type);
        if (rows8) m.interleave_rows8();
        const Tensor w = m.decode();
        // The batched kernels take up to 4 or 8 tokens per pass: 1..8 all used.
        for (int M : {1, 2, 3, 5, 7, 9, 12, 14}) {
            const Tensor X = random_matrix(M, K, unsigned(M), 1.0f);
            const Tensor Y0 = random_matrix(M, N, unsigned(M) + 7, 1.0f);
            const Tensor Xq = takes_int8(m, M) ? round_trip_rows(X, m) : X;
            Tensor want = Y0, want_float = Y0;
            dev.matmul_forward(Xq.data(), w.data(), M, N, K, want.data(), 0.5f, 1.0f);
            dev.matmul_forward(X.data(), w.data(), M, N, K, want_float.data(), 0.5f, 1.0f);
            Tensor cpu = Y0, base = Y0;
            dev.quant_matmul_forward(X.data(), m, M, cpu.data(), 0.5f, 1.0f);
            dev.Device::quant_matmul_forward(X.data(), m, M, base.data(), 0.5f, 1.0f);  // what ane-sim runs
            for (std::int64_t i = 0; i < want.numel(); ++i) {
                ASSERT_NEAR(cpu[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << m.type_name() << " M=" << M;
                ASSERT_NEAR(base[i], want_float[i], 1e-4f * (1 + std::fabs(want_float[i]))) << m.type_name() << " M=" << M;
            }
        }
    }
}

// The relative RMS difference of two sets of logits.
double relative_rms(const std::vector<float>& a, const std::vector<float>& b) {
    double err2 = 0, norm2 = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        err2 += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        norm2 += double(b[i]) * b[i];
    }
    return std::sqrt(err2 / std::max(norm2, 1e-30));
}

// Encoded weights in the decoder give the logits of float32 weights holding the decoded
// values (the same model), and the KV cache fed one token at a time follows the whole prompt:
// exactly for F16/BF16; Q8_0/Q4_0 products that take integer dot products on a quantized
// vector (takes_int8) follow within what that rounding makes of a random model.
TEST(Quant, TheDecoderOnEncodedWeightsEqualsFloat32OnTheDecodedValues) {
    for (bool tied : {true, false}) {
        const ModelConfig c = quant_config(tied);
        const Weights w = test::random_weights(c, 17);
        const std::vector<std::int32_t> tokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
        auto dev = make_device("cpu", 2);
        for (auto type : {ggml::Type::F16, ggml::Type::BF16, ggml::Type::Q8_0, ggml::Type::Q4_0}) {
            Weights decoded = w;
            InferenceWeights q = InferenceWeights::view(w);
            int encoded = 0;
            auto encode = [&](QuantMatrix& m, Tensor& t) {
                m = QuantMatrix::encode(t, QuantMatrix::can_encode(type, int(t.cols())) ? type : ggml::Type::F16);
                t = m.decode();
                // Every other matrix in the rows8 layout (the decoder takes both).
                if (QuantMatrix::can_interleave(m.type(), m.rows()) && encoded++ % 2 == 0) m.interleave_rows8();
            };
            for (std::size_t l = 0; l < q.layers.size(); ++l) {
                InferenceLayer& L = q.layers[l];
                LayerWeights& D = decoded.layers[l];
                encode(L.wq, D.wq), encode(L.wk, D.wk), encode(L.wv, D.wv), encode(L.wo, D.wo);
                encode(L.w1, D.w1), encode(L.w2, D.w2), encode(L.w3, D.w3);
            }
            encode(q.embed, decoded.embed);
            if (!tied) encode(q.classifier, decoded.classifier);
            EXPECT_FALSE(q.all_f32());
            const bool integer = (type == ggml::Type::Q8_0 || type == ggml::Type::Q4_0) && best_int8_dot() != Int8Dot::none;
            const bool batch_integer = integer && (takes_int8(q.layers[0].wq, 2) || takes_int8(q.layers[0].wk, 2));
            std::vector<float> want, all, one_by_one;
            Decoder(decoded, *dev, c.seq).feed(tokens.data(), int(tokens.size()), &want);
            Decoder(q, *dev, c.seq).feed(tokens.data(), int(tokens.size()), &all);
            ASSERT_EQ(all.size(), want.size());
            Decoder one(q, *dev, c.seq);
            for (std::size_t t = 0; t < tokens.size(); ++t) {
                const float* z = one.feed(&tokens[t], 1);
                one_by_one.insert(one_by_one.end(), z, z + c.vocab);
            }
            const std::string name = ggml::type_name(std::uint32_t(type));
            // The kernels are exact on the quantized vector (tested above); through two random
            // layers its rounding grows to 2.5-4.3% of the logits' RMS (measured). Float rows
            // differ in summation order only (2.2e-6 with the AVX2 kernels).
            EXPECT_LT(relative_rms(all, want), batch_integer ? 0.06 : 5e-6) << name;
            EXPECT_LT(relative_rms(one_by_one, want), integer ? 0.06 : 5e-6) << name;
        }
    }
}

// A GGUF's Q8_0 matrices are kept as stored (not expanded), give the logits of the same file
// decoded to float32, and --weights re-encodes or expands them.
TEST(Quant, AGgufsBlocksAreKeptAsStored) {
    const ModelConfig c = quant_config(false);
    Checkpoint ck;
    ck.weights = test::random_weights(c, 23);
    test::TempDir dir;
    const std::string path = dir.path("m.gguf");
    write_gguf_model(ck, {}, GgufExportType::Q8_0, path);
    const InferenceModel kept = load_inference_model(path, std::nullopt);
    EXPECT_TRUE(kept.checkpoint.weights.layers[0].wq.empty());
    EXPECT_EQ(kept.weights.layers[0].wq.type(), ggml::Type::Q8_0);
    EXPECT_EQ(kept.weights.output().type(), ggml::Type::Q8_0);
    EXPECT_EQ(kept.weights.layers[1].w2.type(), ggml::Type::F16);  // rows of 80: the export's fallback
    EXPECT_NE(kept.weights.summary().find("Q8_0 x "), std::string::npos) << kept.weights.summary();
    const Checkpoint expanded = read_gguf_model(path);
    const std::vector<std::int32_t> tokens = {1, 2, 3, 4, 5, 6, 7};
    auto dev = make_device("cpu", 1);
    std::vector<float> a, b, f;
    Decoder(kept.weights, *dev, c.seq).feed(tokens.data(), 7, &a);
    Decoder(expanded.weights, *dev, c.seq).feed(tokens.data(), 7, &b);
    if (takes_int8(kept.weights.layers[0].wq, 7)) {
        // Integer products quantize each token: a random model's logits move by up to ~20%
        // (measured), so what is checked is that a prompt and one token at a time agree.
        std::vector<float> one_by_one;
        Decoder one(kept.weights, *dev, c.seq);
        for (int t = 0; t < 7; ++t) {
            const float* z = one.feed(&tokens[std::size_t(t)], 1);
            one_by_one.insert(one_by_one.end(), z, z + c.vocab);
        }
        EXPECT_LT(relative_rms(a, one_by_one), 1e-5);
    } else {
        EXPECT_LT(relative_rms(a, b), 2e-6);
    }
    const InferenceModel as_f32 = load_inference_model(path, ggml::Type::F32);
    EXPECT_TRUE(as_f32.weights.all_f32());
    Decoder(as_f32.weights, *dev, c.seq).feed(tokens.data(), 7, &f);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(f[i], b[i], 1e-4) << i;
    const InferenceModel q4 = load_inference_model(path, ggml::Type::Q4_0);
    EXPECT_EQ(q4.weights.layers[0].w1.type(), ggml::Type::Q4_0);
    EXPECT_EQ(q4.weights.layers[0].w2.type(), ggml::Type::F16);
}

// Several sequences decoded in one batch per step give each sequence's own logits (as fed
// alone), on float32 and on encoded weights.
TEST(Quant, ABatchOfSequencesDecodesAsEachAlone) {
    const ModelConfig c = quant_config(false);
    const Weights w = test::random_weights(c, 29);
    auto dev = make_device("cpu", 2);
    const InferenceWeights f32 = InferenceWeights::view(w);
    InferenceWeights q8 = InferenceWeights::view(w);
    for (auto& L : q8.layers)
        for (QuantMatrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w3}) *m = QuantMatrix::encode(m->decode(), ggml::Type::Q8_0);
    for (const InferenceWeights* weights : {&f32, static_cast<const InferenceWeights*>(&q8)}) {
        const std::vector<std::vector<std::int32_t>> prompts = {{1, 2, 3}, {4, 5}, {6, 7, 8, 9}};
        const std::vector<std::int32_t> steps[2] = {{10, 11, 12}, {13, 14, 15}};  // one token per sequence per step
        Decoder batch(*weights, *dev, c.seq, 512, 3);
        EXPECT_EQ(batch.sequences(), 3);
        for (int s = 0; s < 3; ++s) batch.feed(prompts[s].data(), int(prompts[s].size()), nullptr, s);
        std::vector<float> batched;
        const int order[3] = {2, 0, 1};
        for (const auto& step : steps) {
            const float* z = batch.feed_batch(step.data(), order, 3);
            batched.insert(batched.end(), z, z + 3 * c.vocab);
        }
        for (int i = 0; i < 3; ++i) {
            const int s = order[i];
            Decoder alone(*weights, *dev, c.seq);
            alone.feed(prompts[s].data(), int(prompts[s].size()));
            for (int k = 0; k < 2; ++k) {
                const float* z = alone.feed(&steps[k][i], 1);
                for (int v = 0; v < c.vocab; ++v)
                    ASSERT_NEAR(batched[(std::size_t(k) * 3 + i) * c.vocab + v], z[v], 1e-3 * (1 + std::fabs(z[v])))
                        << "sequence " << s << " step " << k;
            }
            EXPECT_EQ(batch.position(s), int(prompts[s].size()) + 2);
        }
        const int twice[2] = {1, 1};
        EXPECT_THROW(batch.feed_batch(steps[0].data(), twice, 2), Error);
    }
}

// An int8 artifact's rows run as the Q8_0 they exactly are: the kept matrices decode to the
// values the artifact reader gives.
TEST(Quant, AnArtifactsInt8RowsAreKeptAsTheirExactQ8_0) {
    ModelConfig c = quant_config(false);
    c.dim = 256;
    c.hidden = 320;
    c.heads = 4;
    c.kv_heads = 4;
    c.head_dim = 64;
    c.vocab = 300;
    Checkpoint ck;
    ck.weights = test::random_weights(c, 31);
    test::TempDir dir;
    const std::string path = dir.path("m.int8.zlib");
    write_artifact(ck, path, ArtifactCodec::Zlib, 1);
    const Checkpoint unpacked = read_artifact(path);
    const InferenceModel kept = load_inference_model(path, std::nullopt);
    int q8 = 0;
    kept.weights.for_each([&](const std::string& name, const QuantMatrix& m) {
        const Tensor* want = const_cast<Weights&>(unpacked.weights).find(name);
        ASSERT_NE(want, nullptr) << name;
        if (m.type() == ggml::Type::Q8_0) ++q8;
        EXPECT_TRUE(m.decode().bit_equal(*want)) << name << " " << m.type_name();
    });
    EXPECT_EQ(q8, 2 * 3 + 2);  // w1, w2, w3 of both layers (over 65,536 values), embed, classifier
}
