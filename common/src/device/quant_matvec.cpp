#include "ane/device/quant_matvec.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ane/error.hpp"
#include "ane/half.hpp"
#include "cpu_features.hpp"
#include "int8_kernels.hpp"
#include "simd_sums.hpp"

#if defined(__x86_64__)
// GCC 12's AVX-512 conversion intrinsics start from _mm512_undefined_*(), which its own
// -Wmaybe-uninitialized then reports inside the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

namespace ane {

namespace {

#if defined(__x86_64__)
using simd::hsum256;
using simd::hsum512;
#endif

using ggml::Type;
constexpr int kQK = 32;  // values per Q8_0 / Q4_0 block

inline float finish(float dot, float alpha, float beta, float y) { return beta == 0.0f ? alpha * dot : alpha * dot + beta * y; }

// ---- portable: a block decoded into floats, then a dot product ----

float dot_portable(Type type, const std::uint8_t* w, const float* x, int K) {
    float dot = 0.0f;
    if (type == Type::Q8_0 || type == Type::Q4_0) {
        const std::size_t block = type == Type::Q8_0 ? 34 : 18;
        for (int b = 0; b < K / kQK; ++b, w += block) {
            float v[kQK], s = 0.0f;
            ggml::dequantize(type, w, v, kQK);
            for (int i = 0; i < kQK; ++i) s += v[i] * x[b * kQK + i];
            dot += s;
        }
        return dot;
    }
    // F16, BF16: 64 values at a time.
    float v[64];
    for (int k = 0; k < K; k += 64) {
        const int n = std::min(64, K - k);
        ggml::dequantize(type, w + 2 * std::size_t(k), v, std::size_t(n));
        for (int i = 0; i < n; ++i) dot += v[i] * x[k + i];
    }
    return dot;
}

#if defined(__x86_64__)

// ---- AVX-512 ----

__attribute__((target("avx512f,f16c"))) float dot_f16_avx512(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 512), _MM_HINT_T0);
        acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + k))),
                               _mm512_loadu_ps(x + k), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + k + 16))),
                               _mm512_loadu_ps(x + k + 16), acc1);
    }
    float dot = hsum512(_mm512_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += _cvtsh_ss(h[k]) * x[k];
    return dot;
}

__attribute__((target("avx512f"))) __m512 bf16_to_ps_avx512(const std::uint16_t* h) {
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h))), 16));
}

__attribute__((target("avx512f"))) float dot_bf16_avx512(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 512), _MM_HINT_T0);
        acc0 = _mm512_fmadd_ps(bf16_to_ps_avx512(h + k), _mm512_loadu_ps(x + k), acc0);
        acc1 = _mm512_fmadd_ps(bf16_to_ps_avx512(h + k + 16), _mm512_loadu_ps(x + k + 16), acc1);
    }
    float dot = hsum512(_mm512_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += bf16_to_float(h[k]) * x[k];
    return dot;
}

// ---- AVX2 + FMA + F16C ----

__attribute__((target("avx2,fma,f16c"))) float dot_f16_avx2(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 256), _MM_HINT_T0);
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + k))),
                               _mm256_loadu_ps(x + k), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + k + 8))),
                               _mm256_loadu_ps(x + k + 8), acc1);
    }
    float dot = hsum256(_mm256_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += _cvtsh_ss(h[k]) * x[k];
    return dot;
}

__attribute__((target("avx2,fma"))) __m256 bf16_to_ps_avx2(const std::uint16_t* h) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h))), 16));
}

__attribute__((target("avx2,fma"))) float dot_bf16_avx2(const std::uint8_t* w, const float* x, int K) {
    const auto* h = reinterpret_cast<const std::uint16_t*>(w);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        _mm_prefetch(reinterpret_cast<const char*>(h + k + 256), _MM_HINT_T0);
        acc0 = _mm256_fmadd_ps(bf16_to_ps_avx2(h + k), _mm256_loadu_ps(x + k), acc0);
        acc1 = _mm256_fmadd_ps(bf16_to_ps_avx2(h + k + 8), _mm256_loadu_ps(x + k + 8), acc1);
    }
    float dot = hsum256(_mm256_add_ps(acc0, acc1));
    for (; k < K; ++k) dot += bf16_to_float(h[k]) * x[k];
    return dot;
}

#endif

using RowDot = float (*)(const std::uint8_t*, const float*, int);

RowDot row_dot(MatvecIsa isa, Type type) {
#if defined(__x86_64__)
    if (isa == MatvecIsa::avx512) switch (type) {
            case Type::F16: return dot_f16_avx512;
            case Type::BF16: return dot_bf16_avx512;
            default: break;
        }
    if (isa == MatvecIsa::avx2) switch (type) {
            case Type::F16: return dot_f16_avx2;
            case Type::BF16: return dot_bf16_avx2;
            default: break;
        }
#endif
    (void)isa;
    (void)type;
    return nullptr;
}


// Whether `kind`'s integer kernels take this matrix's rows, in its layout, with the input as
// Q8_0 blocks (Q5_0, Q4_1, Q5_1 in the ggml layout only: they are never regrouped; the rows8
// layout where rows8_integer says, though a matrix may be regrouped on any CPU).
bool int8_matrix(Int8Dot kind, const QuantMatrix& W) {
    if (W.layout() == QuantMatrix::Layout::rows8) return rows8_integer(kind, W.type());
    return int8::rows_kernel(kind, W.type()) != nullptr;
}

// Whether they take K-quant rows of this type, with the input as Q8_K blocks.
bool k_quant_int8(Int8Dot kind, Type t) { return int8::k_rows_kernel(kind, t, 1) != nullptr; }

// The M rows of X quantized as V (QuantizedVector, or KVector for the K-quants) on the pool,
// into this thread's scratch, reused from product to product.
template <class V>
std::vector<V>& quantize_tokens(SpinPool& pool, const float* X, int M, int K) {
    thread_local std::vector<V> scratch;
    std::vector<V>& tokens = scratch;  // a lambda does not capture a thread_local
    if (tokens.size() < std::size_t(M)) tokens.resize(std::size_t(M));
    // A prompt's tokens take a few microseconds to quantize (64 x 288: 3 us on Zen 5), less
    // than handing them to the pool costs; above 2^18 values the pool shares them.
    if (std::int64_t(M) * K < (std::int64_t(1) << 18)) {
        for (int m = 0; m < M; ++m) tokens[std::size_t(m)].set(X + std::size_t(m) * K, K);
        return tokens;
    }
    std::atomic<int> next{0};
    pool.share([&] {
        for (int m = next.fetch_add(1); m < M; m = next.fetch_add(1))
            tokens[std::size_t(m)].set(X + std::size_t(m) * K, K);
    });
    return tokens;
}

// K-quant rows r0..r1 against T tokens: Y[t * ldy + r] (alpha, beta applied). Each chunk of 64
// rows is read for four tokens at a time, and stays in cache for the next four.
void k_quant_rows(Int8Dot kind, const QuantMatrix& W, const int8::KVector* const* tokens, int T, int r0, int r1,
                  float* Y, std::size_t ldy, float alpha, float beta) {
    constexpr int kRows = 64, kTokens = 4;
    float dots[kTokens * kRows];
    for (int r = r0; r < r1; r += kRows) {
        const int n = std::min(kRows, r1 - r);
        for (int t0 = 0; t0 < T; t0 += kTokens) {
            const int nt = std::min(kTokens, T - t0);
            int8::k_rows_kernel(kind, W.type(), nt)(W.row(r), W.row_bytes(), n, tokens + t0, W.cols(), dots, kRows);
            for (int t = 0; t < nt; ++t)
                for (int i = 0; i < n; ++i) {
                    float& y = Y[std::size_t(t0 + t) * ldy + std::size_t(r + i)];
                    y = finish(dots[t * kRows + i], alpha, beta, y);
                }
        }
    }
}

void rows_int8(Int8Dot kind, const QuantMatrix& W, const int8::QuantizedVector& xv, int r0, int r1, float* y, float alpha,
               float beta) {
    float dots[256];
    if (W.layout() == QuantMatrix::Layout::rows8) {  // r0, r1 are multiples of 8 (for_row_chunks)
        const int8::Rows8 rows8 = int8::rows8_kernel(kind, W.type() == Type::Q4_0);
        for (int r = r0; r < r1; r += 256) {  // the 512-bit kernel lays x out once per call
            const int n = std::min(256, r1 - r);
            rows8(W.group(r / 8), n / 8, xv.q.data(), xv.d.data(), xv.sum.data(), W.cols() / kQK, dots);
            for (int i = 0; i < n; ++i) y[r + i] = finish(dots[i], alpha, beta, y[r + i]);
        }
        return;
    }
    const int8::RowsKernel rows = int8::rows_kernel(kind, W.type());
    for (int r = r0; r < r1; r += 64) {
        const int n = std::min(64, r1 - r);
        rows(W.row(r), W.row_bytes(), n, xv.q.data(), xv.d.data(), xv.sum.data(), W.cols() / kQK, dots);
        for (int i = 0; i < n; ++i) y[r + i] = finish(dots[i], alpha, beta, y[r + i]);
    }
}

// One row decoded at a time (a few KB, in L1), then the float32 kernel: the K-quants without
// AVX2, and any rows8 matrix without its kernel.
void decoded_rows(MatvecIsa isa, const QuantMatrix& W, const float* x, int r0, int r1, float* y, float alpha,
                  float beta) {
    thread_local std::vector<float> row;
    row.resize(std::size_t(W.cols()));
    for (int r = r0; r < r1; ++r) {
        W.decode_rows(r, r + 1, row.data());
        matvec_rows(isa, row.data(), x, W.cols(), 0, 1, y + r, alpha, beta);
    }
}

}  // namespace

Int8Dot best_int8_dot() {
#if defined(__x86_64__)
    static const Int8Dot kind = !(cpu::has_avx2() && __builtin_cpu_supports("fma") && cpu::has_f16c())
                                    ? Int8Dot::none
                                : int8::has_int8_avx512() ? Int8Dot::avx512_vnni
                                : cpu::has_avx_vnni() ? Int8Dot::avx_vnni
                                : cpu::has_avx512f() && __builtin_cpu_supports("avx512vnni") &&
                                        __builtin_cpu_supports("avx512vl")
                                    ? Int8Dot::avx512_vnni
                                    : Int8Dot::avx2;
    return kind;
#else
    return Int8Dot::none;
#endif
}

bool rows8_integer(Int8Dot kind, ggml::Type type) {
    if (type != Type::Q8_0 && type != Type::Q4_0) return false;
    return int8::rows8_kernel(kind, type == Type::Q4_0) != nullptr;
}

const char* int8_dot_name(Int8Dot kind) {
    switch (kind) {
        case Int8Dot::none: return "none";
        case Int8Dot::avx2: return "AVX2";
        case Int8Dot::avx_vnni: return "AVX-VNNI";
        case Int8Dot::avx512_vnni: return "AVX512-VNNI";
    }
    return "?";
}

void quant_vector_round_trip(const float* x, int K, float* out) {
    int8::QuantizedVector v;
    v.set(x, K);
    for (int i = 0; i < K; ++i) out[i] = float(v.q[std::size_t(i)]) * v.d[std::size_t(i / kQK)];
}

void k_vector_round_trip(const float* x, int K, float* out) {
    int8::KVector v;
    v.set(x, K);
    for (int i = 0; i < K; ++i) out[i] = float(v.q[std::size_t(i)]) * v.d[std::size_t(i / 256)];
}

void quant_matvec_rows(MatvecIsa isa, const QuantMatrix& W, const float* x, int r0, int r1, float* y, float alpha,
                       float beta, Int8Dot int8) {
    const Type type = W.type();
    const int K = W.cols();
    const bool rows8 = W.layout() == QuantMatrix::Layout::rows8;
    if (k_quant_int8(int8, type)) {
        thread_local int8::KVector xk;
        xk.set(x, K);
        const int8::KVector* token = &xk;
        return k_quant_rows(int8, W, &token, 1, r0, r1, y, 0, alpha, beta);
    }
    if (int8_matrix(int8, W)) {
        require(!rows8 || (r0 % 8 == 0 && (r1 % 8 == 0 || r1 == W.rows())), "rows8: rows in groups of 8");
        thread_local int8::QuantizedVector xv;
        xv.set(x, K);
        return rows_int8(int8, W, xv, r0, r1, y, alpha, beta);
    }
    if (rows8) return decoded_rows(isa, W, x, r0, r1, y, alpha, beta);  // no kernel for this layout here
    if (type == Type::F32) return matvec_rows(isa, W.f32(), x, K, r0, r1, y, alpha, beta);
    if (const RowDot dot = row_dot(isa, type)) {
        for (int r = r0; r < r1; ++r) y[r] = finish(dot(W.row(r), x, K), alpha, beta, y[r]);
        return;
    }
    if (type == Type::Q8_0 || type == Type::Q4_0 || type == Type::F16 || type == Type::BF16) {
        for (int r = r0; r < r1; ++r) y[r] = finish(dot_portable(type, W.row(r), x, K), alpha, beta, y[r]);
        return;
    }
    decoded_rows(isa, W, x, r0, r1, y, alpha, beta);  // K-quants
}

bool quant_matmul_int8(SpinPool& pool, const QuantMatrix& W, const float* X, int M, float* Y, float alpha,
                       float beta) {
    const Int8Dot kind = best_int8_dot();
    if (k_quant_int8(kind, W.type())) {
        std::vector<int8::KVector>& tokens = quantize_tokens<int8::KVector>(pool, X, M, W.cols());
        std::vector<const int8::KVector*> each(static_cast<std::size_t>(M));
        for (int m = 0; m < M; ++m) each[std::size_t(m)] = &tokens[std::size_t(m)];
        for_row_chunks(pool, W.rows(), W.row_bytes() * std::size_t(M), [&](int r0, int r1) {
            k_quant_rows(kind, W, each.data(), M, r0, r1, Y, std::size_t(W.rows()), alpha, beta);
        });
        return true;
    }
    const bool q4 = W.type() == Type::Q4_0;
    const bool rows8 = W.layout() == QuantMatrix::Layout::rows8;
    if (!int8_matrix(kind, W) || (rows8 && !int8::rows8_tokens_kernel(kind, q4, 1))) return false;
    const int N = W.rows(), K = W.cols(), nb = K / kQK;
    std::vector<int8::QuantizedVector>& tokens = quantize_tokens<int8::QuantizedVector>(pool, X, M, K);
    std::vector<int8::TokenBlocks> blocks(static_cast<std::size_t>(M));
    for (int m = 0; m < M; ++m)
        blocks[std::size_t(m)] = {tokens[std::size_t(m)].q.data(), tokens[std::size_t(m)].d.data(),
                                  tokens[std::size_t(m)].sum.data()};
    // Four tokens per pass over a chunk of rows, eight with VNNI in the ggml layout (each block
    // unpacked once for all of them; the chunk's weights stay in L2 for the next ones).
    const int kTokens = rows8 ? 4 : int8::max_tokens(kind);
    auto kernel = [&](int r0, int r1, int t0, int T, float* out, std::size_t ldo) {
        if (rows8)
            int8::rows8_tokens_kernel(kind, q4, T)(W.group(r0 / 8), (r1 - r0) / 8, blocks.data() + t0, nb, out, ldo);
        else
            int8::rows_tokens_kernel(kind, W.type(), T)(W.row(r0), W.row_bytes(), r1 - r0, blocks.data() + t0, nb, out,
                                                        ldo);
    };
    for_row_chunks(
        pool, N, W.row_bytes() * std::size_t(M),
        [&](int r0, int r1) {
            thread_local std::vector<float> out;
            out.resize(std::size_t(kTokens) * (r1 - r0));
            for (int t0 = 0; t0 < M; t0 += kTokens) {
                const int T = std::min(kTokens, M - t0);
                if (alpha == 1.0f && beta == 0.0f) {  // straight into Y
                    kernel(r0, r1, t0, T, Y + std::size_t(t0) * N + r0, std::size_t(N));
                    continue;
                }
                kernel(r0, r1, t0, T, out.data(), std::size_t(r1 - r0));
                for (int t = 0; t < T; ++t)
                    for (int i = 0; i < r1 - r0; ++i) {
                        float& y = Y[std::size_t(t0 + t) * N + r0 + i];
                        y = finish(out[std::size_t(t) * (r1 - r0) + i], alpha, beta, y);
                    }
            }
        },
        rows8 ? 8 : 1);
    return true;
}

void quant_matvec(SpinPool& pool, const QuantMatrix& W, const float* x, float* y, float alpha, float beta) {
    const MatvecIsa isa = best_matvec_isa();
    const Int8Dot int8 = best_int8_dot();
    if (k_quant_int8(int8, W.type())) {
        thread_local int8::KVector scratch;
        const int8::KVector* token = &scratch;  // quantized once per product, read by every thread
        scratch.set(x, W.cols());
        for_row_chunks(pool, W.rows(), W.row_bytes(),
                       [&](int r0, int r1) { k_quant_rows(int8, W, &token, 1, r0, r1, y, 0, alpha, beta); });
        return;
    }
    if (int8_matrix(int8, W)) {
        thread_local int8::QuantizedVector scratch;
        // A named local: a lambda does not capture a thread_local, and a worker would see its own.
        int8::QuantizedVector& xv = scratch;  // quantized once per product, read by every thread
        xv.set(x, W.cols());
        const bool rows8 = W.layout() == QuantMatrix::Layout::rows8;
        for_row_chunks(pool, W.rows(), W.row_bytes(),
                       [&](int r0, int r1) { rows_int8(int8, W, xv, r0, r1, y, alpha, beta); }, rows8 ? 8 : 2);
        return;
    }
    for_row_chunks(pool, W.rows(), W.row_bytes(),
                   [&](int r0, int r1) { quant_matvec_rows(isa, W, x, r0, r1, y, alpha, beta); });
}

}  // namespace ane
