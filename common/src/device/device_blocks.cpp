// The blocks' default implementations: the primitives in the order the cpu device has always
// run them, so a device that fuses nothing computes exactly what it did before.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ane/device/device.hpp"
#include "ane/error.hpp"
#include "ane/model/kernels.hpp"
#include "ane/model/quant_matrix.hpp"

namespace ane {

const char* projection_name(Projection p) {
    switch (p) {
        case Projection::wq: return "wq";
        case Projection::wk: return "wk";
        case Projection::wv: return "wv";
        case Projection::wo: return "wo";
        case Projection::w1: return "w1";
        case Projection::w3: return "w3";
        case Projection::w2: return "w2";
    }
    return "?";
}

AneMode parse_ane_mode(const std::string& text) {
    if (text == "full") return AneMode::full;
    if (text == "matmul") return AneMode::matmul;
    if (text == "cpu-bwd") return AneMode::cpu_bwd;
    throw usage_error("--ane-mode ", text, ": unknown mode (full, matmul or cpu-bwd)");
}

DeviceOptions device_options(int threads, const std::string& ane_mode, const std::string& gemm,
                             const std::string& precision) {
    DeviceOptions o;
    o.threads = threads;
    o.ane_mode = parse_ane_mode(ane_mode);
    o.gemm = parse_gemm_library(gemm);
    o.precision = parse_precision(precision);
    if (o.precision == Precision::bf16 && o.gemm == GemmLibrary::blas)
        throw usage_error("--precision bf16 runs on oneDNN: it cannot be combined with --gemm openblas");
    if (const char* acc = std::getenv("ANE_SIM_ACCUM"); acc && *acc) {
        const std::string a = acc;
        if (a != "fp16" && a != "fp32") throw usage_error("ANE_SIM_ACCUM=", a, ": expected fp32 or fp16");
        o.fp16_accumulate = a == "fp16";
    }
    return o;
}

const char* ane_mode_name(AneMode mode) {
    switch (mode) {
        case AneMode::full: return "full";
        case AneMode::matmul: return "matmul";
        case AneMode::cpu_bwd: return "cpu-bwd";
    }
    return "?";
}

void Device::parallel_for(int n, const std::function<void(int, int)>& body) {
#pragma omp parallel
    {
        const int t = omp_get_thread_num(), T = omp_get_num_threads();
        const int begin = int(std::int64_t(n) * t / T), end = int(std::int64_t(n) * (t + 1) / T);
        if (begin < end) body(begin, end);
    }
}

void Device::made_matmul_forward(const float* X, const WeightRows& rows, int M, int N, int K, float* Y, float alpha,
                                 float beta) {
    static thread_local std::vector<float> w;  // kept: a pass makes every matrix, the classifier too
    w.resize(std::max(w.size(), std::size_t(N) * std::size_t(K)));
    rows(0, N, w.data());
    matmul_forward(X, w.data(), M, N, K, Y, alpha, beta);
}

void Device::quant_matmul_forward(const float* X, const QuantMatrix& W, int M, float* Y, float alpha, float beta) {
    const int N = W.rows(), K = W.cols();
    if (const float* w = W.f32()) return matmul_forward(X, w, M, N, K, Y, alpha, beta);
    const int tile = std::max(1, std::min(N, (1 << 20) / K));
    std::vector<float> w(std::size_t(tile) * K), y(std::size_t(M) * tile);
    for (int r0 = 0; r0 < N; r0 += tile) {
        const int n = std::min(tile, N - r0);
        W.decode_rows(r0, r0 + n, w.data());
        matmul_forward(X, w.data(), M, n, K, y.data());
        for (int m = 0; m < M; ++m)
            for (int j = 0; j < n; ++j) {
                float& out = Y[std::size_t(m) * N + r0 + j];
                out = alpha * y[std::size_t(m) * n + j] + (beta == 0.0f ? 0.0f : beta * out);
            }
    }
}

void Device::projection_forward(Projection, const float* X, const float* W, int M, int N, int K, float* Y,
                                float alpha, float beta) {
    weight_forward(X, W, M, N, K, Y, alpha, beta);
}

void Device::projection_input_grad(Projection, const float* dY, const float* W, int M, int N, int K, float* dX,
                                   float alpha, float beta) {
    weight_input_grad(dY, W, M, N, K, dX, alpha, beta);
}

void rope_and_attention(Device& device, const AttentionShape& s, const RopeTables& rope, float* q, float* k,
                        const float* v, float* o, float* probs) {
    {
        ScopedTimer timer(device.profile().elementwise_s);
        kernels::rope_apply(q, s.tokens(), s.S, s.heads, s.head_dim, rope.cos, rope.sin, false);
        kernels::rope_apply(k, s.tokens(), s.S, s.kv_heads, s.head_dim, rope.cos, rope.sin, false);
    }
    device.attention_forward(q, k, v, s.B, s.S, s.heads, s.kv_heads, s.head_dim, o, probs);
}

void Device::qkv_forward(const float* xnorm, const float* wq, const float* wk, const float* wv, int T, int dim,
                         int q_dim, int kv_dim, float* q, float* k, float* v) {
    projection_forward(Projection::wq, xnorm, wq, T, q_dim, dim, q);
    projection_forward(Projection::wk, xnorm, wk, T, kv_dim, dim, k);
    projection_forward(Projection::wv, xnorm, wv, T, kv_dim, dim, v);
}

void Device::sdpa_forward(const float* xnorm, const float* wq, const float* wk, const float* wv, int dim,
                          const AttentionShape& s, const RopeTables& rope, float* q, float* k, float* v, float* o,
                          float* probs) {
    qkv_forward(xnorm, wq, wk, wv, s.tokens(), dim, s.q_dim(), s.kv_dim(), q, k, v);
    rope_and_attention(*this, s, rope, q, k, v, o, probs);
}

void Device::sdpa_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout,
                           const AttentionShape& s, float* dq, float* dk, float* dv) {
    attention_backward(q, k, v, probs, dout, s.B, s.S, s.heads, s.kv_heads, s.head_dim, dq, dk, dv);
}

void Device::ffn_forward(const float* f, const float* x2, const float* w1, const float* w3, const float* w2, int T,
                         int D, int H, float alpha, float* h1, float* h3, float* g, float* next) {
    projection_forward(Projection::w1, f, w1, T, H, D, h1);
    projection_forward(Projection::w3, f, w3, T, H, D, h3);
    {
        ScopedTimer timer(profile_.elementwise_s);
        kernels::swiglu_forward(h1, h3, std::int64_t(T) * H, g);
        if (next != x2) std::memcpy(next, x2, sizeof(float) * std::size_t(T) * std::size_t(D));
    }
    projection_forward(Projection::w2, g, w2, T, D, H, next, alpha, 1.0f);
}

void Device::ffn_input_grad(const float* dh1, const float* dh3, const float* w1, const float* w3, int T, int H, int D,
                            float* df) {
    weight_input_grad(dh1, w1, T, H, D, df);
    weight_input_grad(dh3, w3, T, H, D, df, 1.0f, 1.0f);
}

void Device::kv_input_grad(const float* dk, const float* dv, const float* wk, const float* wv, int T, int KV, int D,
                           float* da) {
    weight_input_grad(dk, wk, T, KV, D, da, 1.0f, 1.0f);
    weight_input_grad(dv, wv, T, KV, D, da, 1.0f, 1.0f);
}

}  // namespace ane
