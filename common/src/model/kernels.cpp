#include "ane/model/kernels.hpp"

#include "ane/model/fast_math.hpp"
#include "ane/simd_clones.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ane::kernels {

// Below this many elements a kernel runs on one thread: waking the others costs more. An
// OpenMP region costs ~20 us of two threads' time where they wait passively, as the tools ask
// (Zen 5 VM), about what 128K elements of RMSNorm or SwiGLU take on one core: a prompt's rows
// (64 x 768 at stories110M) run on the caller, a training batch's on all threads.
constexpr std::int64_t kParallelMin = 1 << 17;

namespace {

ANE_SIMD_CLONES float rmsnorm_row(const float* x, const float* w, int D, float eps, float* y) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < D; ++i) ss += x[i] * x[i];
    const float r = 1.0f / std::sqrt(ss / float(D) + eps);
#pragma omp simd
    for (int i = 0; i < D; ++i) y[i] = x[i] * r * w[i];
    return r;
}

ANE_SIMD_CLONES void rmsnorm_backward_row(const float* x, const float* w, float r, const float* dy, int D, float* dx,
                                          float* dw) {
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int i = 0; i < D; ++i) dot += w[i] * dy[i] * x[i];
    const float c = r * r * dot / float(D);
#pragma omp simd
    for (int i = 0; i < D; ++i) {
        dx[i] += r * (w[i] * dy[i] - x[i] * c);
        dw[i] += dy[i] * x[i] * r;
    }
}

}  // namespace

void rmsnorm_forward(const float* x, const float* w, int T, int D, float eps, float* y, float* rstd) {
#pragma omp parallel for schedule(static) if (std::int64_t(T) * D >= kParallelMin)
    for (int t = 0; t < T; ++t)
        rstd[t] = rmsnorm_row(x + std::int64_t(t) * D, w, D, eps, y + std::int64_t(t) * D);
}

void rmsnorm_backward(const float* x, const float* w, const float* rstd, const float* dy, int T, int D, float* dx,
                      float* dw) {
    // Per-thread dw partials, added in thread order for reproducible sums.
    const int threads = omp_get_max_threads();
    std::vector<float> partial(static_cast<std::size_t>(threads) * D, 0.0f);
#pragma omp parallel num_threads(threads)
    {
        const int id = omp_get_thread_num(), nt = omp_get_num_threads();
        float* dw_local = partial.data() + std::size_t(id) * D;
        for (int t = T * id / nt; t < T * (id + 1) / nt; ++t) {
            const std::int64_t at = std::int64_t(t) * D;
            rmsnorm_backward_row(x + at, w, rstd[t], dy + at, D, dx + at, dw_local);
        }
    }
    for (int id = 0; id < threads; ++id)
        for (int i = 0; i < D; ++i) dw[i] += partial[std::size_t(id) * D + i];
}

void add_bias(float* y, const float* b, int T, int N) {
#pragma omp parallel for schedule(static) if (std::int64_t(T) * N >= kParallelMin)
    for (int t = 0; t < T; ++t) {
        float* yt = y + std::int64_t(t) * N;
#pragma omp simd
        for (int i = 0; i < N; ++i) yt[i] += b[i];
    }
}

void bias_grad(const float* dy, int T, int N, float* db) {
    // Columns split across threads; each sums its columns over all rows in row order.
#pragma omp parallel for schedule(static) if (std::int64_t(T) * N >= kParallelMin)
    for (int i0 = 0; i0 < N; i0 += 64) {
        const int i1 = std::min(N, i0 + 64);
        for (int t = 0; t < T; ++t) {
            const float* d = dy + std::int64_t(t) * N;
            for (int i = i0; i < i1; ++i) db[i] += d[i];
        }
    }
}

void rope_tables(int S, int head_dim, double theta, float* cos_table, float* sin_table,
                 const std::vector<double>& divisors) {
    const int half = head_dim / 2;
    for (int p = 0; p < S; ++p)
        for (int i = 0; i < half; ++i) {
            float freq = 1.0f / std::pow(float(theta), float(2 * i) / float(head_dim));
            if (!divisors.empty()) freq = float(double(freq) / divisors[std::size_t(i)]);
            const float ang = float(p) * freq;
            cos_table[p * half + i] = std::cos(ang);
            sin_table[p * half + i] = std::sin(ang);
        }
}

namespace {

// One token's heads, interleaved pairs (2i, 2i+1) rotated by (c[i], sign * s[i]).
ANE_SIMD_CLONES void rope_row(float* x, int heads, int head_dim, const float* c, const float* s, float sign) {
    const int half = head_dim / 2;
    for (int h = 0; h < heads; ++h) {
        float* xh = x + h * head_dim;
#pragma omp simd
        for (int i = 0; i < half; ++i) {
            const float x0 = xh[2 * i], x1 = xh[2 * i + 1];
            const float sn = sign * s[i];
            xh[2 * i] = x0 * c[i] - x1 * sn;
            xh[2 * i + 1] = x0 * sn + x1 * c[i];
        }
    }
}

}  // namespace

void rope_apply(float* x, int T, int S, int heads, int head_dim, const float* cos_table, const float* sin_table,
                bool inverse) {
    const int half = head_dim / 2;
    const int C = heads * head_dim;
    const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static) if (std::int64_t(T) * C >= kParallelMin)
    for (int t = 0; t < T; ++t)
        rope_row(x + std::int64_t(t) * C, heads, head_dim, cos_table + (t % S) * half, sin_table + (t % S) * half,
                 sign);
}

ANE_SIMD_CLONES void attend_one(const float* q, const float* k, const float* v, int stride, int span, int hd,
                                float scale, float* p, float* out) {
    float mx = -INFINITY;
    for (int j = 0; j < span; ++j) {
        const float* kj = k + std::int64_t(j) * stride;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int d = 0; d < hd; ++d) dot += q[d] * kj[d];
        p[j] = dot * scale;
        mx = std::max(mx, p[j]);
    }
    const float inv = softmax_exp(p, span, mx);
    for (int j = 0; j < span; ++j) p[j] *= inv;
    for (int d = 0; d < hd; ++d) out[d] = 0.0f;
    for (int j = 0; j < span; ++j) {
        const float* vj = v + std::int64_t(j) * stride;
        const float pj = p[j];
#pragma omp simd
        for (int d = 0; d < hd; ++d) out[d] += pj * vj[d];
    }
}

namespace {

constexpr std::int64_t kChunk = 1 << 14;  // elements per call of a cloned elementwise loop

ANE_SIMD_CLONES void swiglu_forward_chunk(const float* h1, const float* h3, std::int64_t n, float* g) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) {
        const float sig = 1.0f / (1.0f + fast_exp(-h1[i]));
        g[i] = h1[i] * sig * h3[i];
    }
}

ANE_SIMD_CLONES void swiglu_backward_chunk(const float* h1, const float* h3, const float* dg, std::int64_t n,
                                           float* dh1, float* dh3) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) {
        const float sig = 1.0f / (1.0f + fast_exp(-h1[i]));
        dh3[i] = dg[i] * h1[i] * sig;
        dh1[i] = dg[i] * h3[i] * sig * (1.0f + h1[i] * (1.0f - sig));
    }
}

}  // namespace

void swiglu_forward(const float* h1, const float* h3, std::int64_t n, float* g) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::int64_t i = 0; i < n; i += kChunk)
        swiglu_forward_chunk(h1 + i, h3 + i, std::min(kChunk, n - i), g + i);
}

void swiglu_backward(const float* h1, const float* h3, const float* dg, std::int64_t n, float* dh1, float* dh3) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (std::int64_t i = 0; i < n; i += kChunk)
        swiglu_backward_chunk(h1 + i, h3 + i, dg + i, std::min(kChunk, n - i), dh1 + i, dh3 + i);
}

namespace {

// Row z's softmax replaces it, less one at the target, times `scale`; returns the row's loss.
ANE_SIMD_CLONES double cross_entropy_row(float* z, int target, int V, float scale) {
    const float mx = max_of(z, V);
    const float z_target = z[target] - mx;
    const float sum = exp_shifted(z, V, mx);
    // Probabilities that would scale to a subnormal become 0 before the multiply: a vector
    // multiply with one subnormal result costs a microcode assist (exp's floor, 1.2e-38, times
    // 1/T reaches them once a row's logits spread more than ~80).
    const float k = scale / sum;
    const float smallest = std::numeric_limits<float>::min() / k;
#pragma omp simd
    for (int c = 0; c < V; ++c) z[c] = (z[c] < smallest ? 0.0f : z[c]) * k;
    z[target] -= scale;
    return double(std::log(sum)) - double(z_target);
}

ANE_SIMD_CLONES double row_loss_of(const float* z, int target, int V) {
    const float mx = max_of(z, V);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < V; ++c) sum += fast_exp(z[c] - mx);
    return std::log(double(sum)) - double(z[target] - mx);
}

}  // namespace

double cross_entropy(float* logits, const std::int32_t* targets, int T, int V, float grad_scale) {
    std::vector<double> row_loss(static_cast<std::size_t>(T));
    const float inv_T = grad_scale / float(T);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; ++t) row_loss[t] = cross_entropy_row(logits + std::int64_t(t) * V, targets[t], V, inv_T);
    double total = 0.0;
    for (double l : row_loss) total += l;
    return total / T;
}

void cross_entropy_rows(const float* logits, const std::int32_t* targets, int T, int V, double* out_loss) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; ++t) out_loss[t] = row_loss_of(logits + std::int64_t(t) * V, targets[t], V);
}

}  // namespace ane::kernels
