// Causal attention as matrix products. One task per (sequence, head) forward and per
// (sequence, KV head) backward, statically split over the threads; inside a task the query
// rows go in blocks of kRows, and a block's products stop at its last row's column, so the
// masked upper triangle is (nearly) never computed. The libraries run single-threaded inside
// the parallel region; no task allocates.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ane/model/fast_math.hpp"
#include "ane/model/kernels.hpp"
#include "ane/simd_clones.hpp"

namespace ane::kernels {

namespace {

constexpr int kRows = 64;

// Row t of scores (already scaled) over columns [0, t] becomes the softmax, the spec's 1e-10 in
// the denominator; columns (t, S) are zeroed. The loops run to a multiple of 16 columns, the
// masked ones as -inf (exp gives 1e-38, lost in a sum of at least 1), so that no vector loop
// ends in a scalar tail (a third of the row's time before).
ANE_SIMD_CLONES void causal_softmax_row(float* p, int t, int S) {
    const int n = std::min(S, (t + 16) & ~15);
    for (int j = t + 1; j < n; ++j) p[j] = -INFINITY;
    const float inv = softmax_exp(p, n, max_of(p, n));
#pragma omp simd
    for (int j = 0; j < n; ++j) p[j] = j <= t ? p[j] * inv : 0.0f;  // 1e-38 * inv would be subnormal: slow
    std::fill(p + n, p + S, 0.0f);
}

// d (dP over n columns) becomes dS = p (d - <d, p>) scale.
ANE_SIMD_CLONES void softmax_grad_row(const float* p, int n, float scale, float* d) {
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < n; ++j) dot += d[j] * p[j];
#pragma omp simd
    for (int j = 0; j < n; ++j) d[j] = (d[j] - dot) * p[j] * scale;
}

}  // namespace

void attention_forward(const float* q, const float* k, const float* v, int B, int S, int nh, int nkv, int hd,
                       float* o, float* probs, GemmLibrary library) {
    const int r = nh / nkv;
    const int Cq = nh * hd, Ckv = nkv * hd;
    const float scale = 1.0f / std::sqrt(float(hd));
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < nh; ++h) {
            const float* Q = q + std::int64_t(b) * S * Cq + h * hd;
            const float* K = k + std::int64_t(b) * S * Ckv + (h / r) * hd;
            const float* V = v + std::int64_t(b) * S * Ckv + (h / r) * hd;
            float* O = o + std::int64_t(b) * S * Cq + h * hd;
            float* P = probs + (std::int64_t(b) * nh + h) * S * S;
            for (int r0 = 0; r0 < S; r0 += kRows) {
                const int r1 = std::min(S, r0 + kRows), rows = r1 - r0;
                float* Pb = P + std::int64_t(r0) * S;
                gemm_on(library, false, true, rows, r1, hd, scale, Q + std::int64_t(r0) * Cq, Cq, K, Ckv, 0.0f, Pb, S);
                for (int t = r0; t < r1; ++t) causal_softmax_row(P + std::int64_t(t) * S, t, S);
                gemm_on(library, false, false, rows, hd, r1, 1.0f, Pb, S, V, Ckv, 0.0f, O + std::int64_t(r0) * Cq, Cq);
            }
        }
}

void attention_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout, int B,
                        int S, int nh, int nkv, int hd, float* dq, float* dk, float* dv, GemmLibrary library) {
    const int r = nh / nkv;
    const int Cq = nh * hd, Ckv = nkv * hd;
    const float scale = 1.0f / std::sqrt(float(hd));
    const int threads = omp_get_max_threads();
    // dP, then dS in place, for one block of rows: one buffer per thread.
    std::vector<float> scratch(std::size_t(threads) * std::min(S, kRows) * S);
    // A task owns its KV head's dk/dv rows: no two threads write the same memory.
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int b = 0; b < B; ++b)
        for (int g = 0; g < nkv; ++g) {
            float* dS = scratch.data() + std::size_t(omp_get_thread_num()) * std::min(S, kRows) * S;
            const float* K = k + std::int64_t(b) * S * Ckv + g * hd;
            const float* V = v + std::int64_t(b) * S * Ckv + g * hd;
            float* dK = dk + std::int64_t(b) * S * Ckv + g * hd;
            float* dV = dv + std::int64_t(b) * S * Ckv + g * hd;
            for (int j = 0; j < S; ++j)
                for (int d = 0; d < hd; ++d) dK[std::int64_t(j) * Ckv + d] = dV[std::int64_t(j) * Ckv + d] = 0.0f;
            for (int h = g * r; h < (g + 1) * r; ++h) {
                const float* Q = q + std::int64_t(b) * S * Cq + h * hd;
                const float* dO = dout + std::int64_t(b) * S * Cq + h * hd;
                float* dQ = dq + std::int64_t(b) * S * Cq + h * hd;
                const float* P = probs + (std::int64_t(b) * nh + h) * S * S;
                for (int r0 = 0; r0 < S; r0 += kRows) {
                    const int r1 = std::min(S, r0 + kRows), rows = r1 - r0;
                    const float* Pb = P + std::int64_t(r0) * S;
                    const float* dOb = dO + std::int64_t(r0) * Cq;
                    // dV[0, r1) += Pbᵀ dOb;  dP = dOb V[0, r1)ᵀ
                    gemm_on(library, true, false, r1, hd, rows, 1.0f, Pb, S, dOb, Cq, 1.0f, dV, Ckv);
                    gemm_on(library, false, true, rows, r1, hd, 1.0f, dOb, Cq, V, Ckv, 0.0f, dS, r1);
                    // dS = P (dP - <dP, P>) scale; zero where P is (the masked columns).
                    for (int i = 0; i < rows; ++i)
                        softmax_grad_row(Pb + std::int64_t(i) * S, r1, scale, dS + std::int64_t(i) * r1);
                    // dQ rows = dS K[0, r1);  dK[0, r1) += dSᵀ Q rows
                    gemm_on(library, false, false, rows, hd, r1, 1.0f, dS, r1, K, Ckv, 0.0f, dQ + std::int64_t(r0) * Cq,
                            Cq);
                    gemm_on(library, true, false, r1, hd, rows, 1.0f, dS, r1, Q + std::int64_t(r0) * Cq, Cq, 1.0f, dK,
                            Ckv);
                }
            }
        }
}

}  // namespace ane::kernels
