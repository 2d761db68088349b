#pragma once
// The transformer's elementwise and attention kernels on the CPU, float32, token-major:
// an activation is [T, C] row-major (token t's channels contiguous). Math as in
// spec/model.md; each kernel has a double-precision reference test.
#include <cstdint>
#include <vector>

#include "ane/device/gemm.hpp"

namespace ane::kernels {

// y[t,:] = x[t,:] * rstd[t] * w, rstd[t] = 1/sqrt(mean(x[t,:]^2) + eps).
void rmsnorm_forward(const float* x, const float* w, int T, int D, float eps, float* y, float* rstd);
// dx[t,:] += rstd (w*dy - x rstd^2 <w*dy, x>/D); dw += sum_t dy x rstd.
void rmsnorm_backward(const float* x, const float* w, const float* rstd, const float* dy, int T, int D, float* dx,
                      float* dw);

// RoPE tables for positions [0, S): cos/sin [S, head_dim/2], float32 as llama2.c computes them.
// `divisors` (head_dim / 2 of them, or none): rope scaling, ModelConfig::rope_divisors().
void rope_tables(int S, int head_dim, double theta, float* cos_table, float* sin_table,
                 const std::vector<double>& divisors = {});
// Rotates interleaved pairs (2i, 2i+1) of every head of x [T, heads*head_dim]; token t is at
// position t % S. inverse = true applies the transposed rotation (the backward pass).
void rope_apply(float* x, int T, int S, int heads, int head_dim, const float* cos_table, const float* sin_table,
                bool inverse);

// One query against `span` keys and values (rows `stride` floats apart): p[0, span) receives the
// softmax weights (with the spec's 1e-10 in the denominator), out[hd] the weighted values.
void attend_one(const float* q, const float* k, const float* v, int stride, int span, int hd, float scale, float* p,
                float* out);

// Causal attention with grouped-query heads, for B sequences of S tokens (attention.cpp).
// q [B*S, nh*hd], k/v [B*S, nkv*hd], out o [B*S, nh*hd]; probs [B, nh, S, S] saved for backward.
// Each (sequence, head) runs as matrix products over blocks of query rows, on `library`.
void attention_forward(const float* q, const float* k, const float* v, int B, int S, int nh, int nkv, int hd,
                       float* o, float* probs, GemmLibrary library);
// dq [B*S, nh*hd] (overwritten), dk/dv [B*S, nkv*hd] (overwritten).
void attention_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout, int B,
                        int S, int nh, int nkv, int hd, float* dq, float* dk, float* dv, GemmLibrary library);

// y[t, i] += b[i] for T rows of N.
void add_bias(float* y, const float* b, int T, int N);
// db[i] += Σ_t dy[t, i] (a bias's gradient), summed in a fixed order.
void bias_grad(const float* dy, int T, int N, float* db);

// g = SiLU(h1) * h3 over n elements.
void swiglu_forward(const float* h1, const float* h3, std::int64_t n, float* g);
// dh1, dh3 from dg (overwritten).
void swiglu_backward(const float* h1, const float* h3, const float* dg, std::int64_t n, float* dh1, float* dh3);

// Mean cross-entropy over T rows of logits [T, V] against targets; logits are replaced by
// dlogits = (softmax - onehot) * grad_scale / T. Returns the mean loss (double sum).
double cross_entropy(float* logits, const std::int32_t* targets, int T, int V, float grad_scale);
// Loss of each row without gradients (evaluation): out_loss[t] = -log softmax(logits[t])[target].
void cross_entropy_rows(const float* logits, const std::int32_t* targets, int T, int V, double* out_loss);

}  // namespace ane::kernels
