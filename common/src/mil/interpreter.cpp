#include "ane/mil/interpreter.hpp"

#include "ane/cblas.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "ane/half.hpp"
#include "type_rules.hpp"

namespace ane::mil {

namespace {

float r16(float x) { return fp16_to_float(float_to_fp16(x)); }

// Row-major strides of a shape left-padded to rank 4; broadcast axes (size 1 where the output
// is larger) get stride 0.
std::array<std::int64_t, 4> strides4(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& out) {
    std::array<std::int64_t, 4> dims{1, 1, 1, 1}, od{1, 1, 1, 1}, st{0, 0, 0, 0};
    for (std::size_t k = 0; k < shape.size(); ++k) dims[4 - shape.size() + k] = shape[k];
    for (std::size_t k = 0; k < out.size(); ++k) od[4 - out.size() + k] = out[k];
    std::int64_t s = 1;
    for (int k = 3; k >= 0; --k) {
        st[std::size_t(k)] = dims[std::size_t(k)] == od[std::size_t(k)] ? s : 0;
        s *= dims[std::size_t(k)];
    }
    return st;
}

// (outer, n, inner) around one axis of a shape.
void split_at(const std::vector<std::int64_t>& shape, int axis, std::int64_t& outer, std::int64_t& n,
              std::int64_t& inner) {
    outer = inner = 1;
    for (int k = 0; k < axis; ++k) outer *= shape[std::size_t(k)];
    n = shape[std::size_t(axis)];
    for (std::size_t k = std::size_t(axis) + 1; k < shape.size(); ++k) inner *= shape[k];
}

int norm_axis(std::int32_t axis, std::size_t rank) { return axis < 0 ? axis + int(rank) : axis; }

}  // namespace

void matmul_fp16_accumulate(const float* A, const float* B, int M, int N, int K, float* C) {
#pragma omp parallel for schedule(static) if (std::int64_t(M) * N * K > (1 << 18))
    for (int m = 0; m < M; ++m) {
        float* acc = C + std::int64_t(m) * N;
        std::fill(acc, acc + N, 0.0f);
        for (int k = 0; k < K; ++k) {
            const float a = A[std::int64_t(m) * K + k];
            if (a == 0.0f) continue;  // adds nothing to a sum already on the fp16 grid
            const float* b = B + std::int64_t(k) * N;
            for (int n = 0; n < N; ++n) acc[n] += a * b[n];
            round_to_fp16(acc, std::size_t(N));
        }
    }
}

Interpreter::Interpreter(Program program, InterpreterOptions options)
    : program_(std::move(program)), options_(options) {
    const std::size_t n = program_.statements.size() + 1;
    store_.resize(n);
    ptr_.assign(n, nullptr);
    store_[0].resize(std::size_t(program_.input_type.numel()));
    ptr_[0] = store_[0].data();
    for (std::size_t k = 0; k < program_.statements.size(); ++k) {
        const Statement& st = program_.statements[k];
        if (st.op == Op::constant) {
            if (st.type.dtype == DType::fp16) ptr_[k + 1] = st.value.f.data();
        } else if (st.op != Op::reshape) {
            store_[k + 1].resize(std::size_t(st.type.numel()));
            ptr_[k + 1] = store_[k + 1].data();
        }
    }
}

float* Interpreter::result(std::size_t k) { return store_[k + 1].data(); }

void Interpreter::run(const std::uint16_t* input, std::uint16_t* output) {
    fp16_to_float(input, store_[0].data(), store_[0].size());
    execute();
    float_to_fp16(value(program_.output), output, std::size_t(output_type().numel()));
}

void Interpreter::run(const float* input, float* output) {
    std::memcpy(store_[0].data(), input, store_[0].size() * sizeof(float));
    round_to_fp16(store_[0].data(), store_[0].size());
    execute();
    std::memcpy(output, value(program_.output), std::size_t(output_type().numel()) * sizeof(float));
}

void Interpreter::execute() {
    for (std::size_t k = 0; k < program_.statements.size(); ++k) step(k);
}

void Interpreter::step(std::size_t k) {
    const Statement& st = program_.statements[k];
    if (st.op == Op::constant) return;
    auto var = [&](const char* name) { return st.arg(name).values[0]; };
    auto type = [&](const char* name) -> const Type& { return program_.type_of(var(name)); };
    auto ints = [&](const char* name) -> const std::vector<std::int32_t>& { return program_.constant(var(name)).i; };
    auto flag = [&](const char* name) { return program_.constant(var(name)).b; };
    const std::vector<std::int64_t>& os = st.type.shape;
    const std::int64_t count = st.type.numel();

    switch (st.op) {
        case Op::reshape:  // row-major reinterpretation: the same values
            ptr_[k + 1] = value(var("x"));
            return;
        case Op::slice_by_size: {
            const auto& b = ints("begin");
            const auto& xs = type("x").shape;
            const float* x = value(var("x"));
            float* o = result(k);
            for (std::int64_t i0 = 0; i0 < os[0]; ++i0)
                for (std::int64_t i1 = 0; i1 < os[1]; ++i1)
                    for (std::int64_t i2 = 0; i2 < os[2]; ++i2) {
                        const float* src = x + (((i0 + b[0]) * xs[1] + i1 + b[1]) * xs[2] + i2 + b[2]) * xs[3] + b[3];
                        std::memcpy(o, src, sizeof(float) * std::size_t(os[3]));
                        o += os[3];
                    }
            return;  // a copy: already on the fp16 grid
        }
        case Op::transpose: {
            const auto& p = ints("perm");
            const auto& xs = type("x").shape;
            const std::int64_t xst[4] = {xs[1] * xs[2] * xs[3], xs[2] * xs[3], xs[3], 1};
            const std::int64_t s0 = xst[p[0]], s1 = xst[p[1]], s2 = xst[p[2]], s3 = xst[p[3]];
            const float* x = value(var("x"));
            float* o = result(k);
            for (std::int64_t i0 = 0; i0 < os[0]; ++i0)
                for (std::int64_t i1 = 0; i1 < os[1]; ++i1)
                    for (std::int64_t i2 = 0; i2 < os[2]; ++i2) {
                        const float* src = x + i0 * s0 + i1 * s1 + i2 * s2;
                        for (std::int64_t i3 = 0; i3 < os[3]; ++i3) *o++ = src[i3 * s3];
                    }
            return;
        }
        case Op::matmul: {
            const auto& xs = type("x").shape;
            const auto& ys = type("y").shape;
            const bool tx = flag("transpose_x"), ty = flag("transpose_y");
            const int M = int(os[2]), N = int(os[3]), K = int(tx ? xs[2] : xs[3]);
            const std::int64_t batches = os[0] * os[1], xsz = xs[2] * xs[3], ysz = ys[2] * ys[3];
            const float* x = value(var("x"));
            const float* y = value(var("y"));
            float* o = result(k);
            for (std::int64_t b = 0; b < batches; ++b) {
                const float* xb = x + b * xsz;
                const float* yb = y + b * ysz;
                float* ob = o + b * std::int64_t(M) * N;
                if (!options_.fp16_accumulate) {
                    cblas_sgemm(CblasRowMajor, tx ? CblasTrans : CblasNoTrans, ty ? CblasTrans : CblasNoTrans, M, N, K,
                                1.0f, xb, int(xs[3]), yb, int(ys[3]), 0.0f, ob, N);
                    continue;
                }
                // Materialise the operands in [M,K] and [K,N] for the rounding kernel.
                if (tx) {
                    scratch_a_.resize(std::size_t(M) * K);
                    for (int m = 0; m < M; ++m)
                        for (int kk = 0; kk < K; ++kk) scratch_a_[std::size_t(m) * K + kk] = xb[std::int64_t(kk) * M + m];
                    xb = scratch_a_.data();
                }
                if (ty) {
                    scratch_b_.resize(std::size_t(K) * N);
                    for (int kk = 0; kk < K; ++kk)
                        for (int n = 0; n < N; ++n) scratch_b_[std::size_t(kk) * N + n] = yb[std::int64_t(n) * K + kk];
                    yb = scratch_b_.data();
                }
                matmul_fp16_accumulate(xb, yb, M, N, K, ob);
            }
            break;
        }
        case Op::conv: {
            const auto& ws = type("weight").shape;
            const int OC = int(ws[0]), IC = int(ws[1]), S = int(os[3]);
            const float* w = value(var("weight"));
            const float* x = value(var("x"));
            if (options_.fp16_accumulate)
                matmul_fp16_accumulate(w, x, OC, S, IC, result(k));
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, S, IC, 1.0f, w, IC, x, S, 0.0f, result(k), S);
            break;
        }
        case Op::mul:
        case Op::add:
        case Op::sub: {
            const auto sx = strides4(type("x").shape, os), sy = strides4(type("y").shape, os);
            std::array<std::int64_t, 4> d{1, 1, 1, 1};
            for (std::size_t q = 0; q < os.size(); ++q) d[4 - os.size() + q] = os[q];
            const float* x = value(var("x"));
            const float* y = value(var("y"));
            float* o = result(k);
            const Op op = st.op;
            for (std::int64_t i0 = 0; i0 < d[0]; ++i0)
                for (std::int64_t i1 = 0; i1 < d[1]; ++i1)
                    for (std::int64_t i2 = 0; i2 < d[2]; ++i2) {
                        const float* xr = x + i0 * sx[0] + i1 * sx[1] + i2 * sx[2];
                        const float* yr = y + i0 * sy[0] + i1 * sy[1] + i2 * sy[2];
                        const std::int64_t a = sx[3], c = sy[3];
                        if (op == Op::mul)
                            for (std::int64_t i = 0; i < d[3]; ++i) o[i] = xr[i * a] * yr[i * c];
                        else if (op == Op::add)
                            for (std::int64_t i = 0; i < d[3]; ++i) o[i] = xr[i * a] + yr[i * c];
                        else
                            for (std::int64_t i = 0; i < d[3]; ++i) o[i] = xr[i * a] - yr[i * c];
                        o += d[3];
                    }
            break;
        }
        case Op::sigmoid: {
            const float* x = value(var("x"));
            float* o = result(k);
            for (std::int64_t i = 0; i < count; ++i) o[i] = 1.0f / (1.0f + std::exp(-x[i]));
            break;
        }
        case Op::softmax: {
            const auto& xs = type("x").shape;
            std::int64_t outer, n, inner;
            split_at(xs, norm_axis(program_.constant(var("axis")).i[0], xs.size()), outer, n, inner);
            const float* x = value(var("x"));
            float* o = result(k);
            const bool half = options_.fp16_accumulate;
            for (std::int64_t a = 0; a < outer; ++a)
                for (std::int64_t c = 0; c < inner; ++c) {
                    const float* xr = x + a * n * inner + c;
                    float* orow = o + a * n * inner + c;
                    float mx = -INFINITY;
                    for (std::int64_t i = 0; i < n; ++i) mx = std::max(mx, xr[i * inner]);
                    float sum = 0.0f;
                    for (std::int64_t i = 0; i < n; ++i) {
                        float e = std::exp(xr[i * inner] - mx);
                        if (half) e = r16(e);
                        orow[i * inner] = e;
                        sum = half ? r16(sum + e) : sum + e;
                    }
                    const float inv = 1.0f / sum;
                    for (std::int64_t i = 0; i < n; ++i) orow[i * inner] *= inv;
                }
            break;
        }
        case Op::reduce_sum: {
            const auto& xs = type("x").shape;
            std::int64_t outer, n, inner;
            split_at(xs, norm_axis(ints("axes")[0], xs.size()), outer, n, inner);
            const float* x = value(var("x"));
            float* o = result(k);
            const bool half = options_.fp16_accumulate;
            for (std::int64_t a = 0; a < outer; ++a)
                for (std::int64_t c = 0; c < inner; ++c) {
                    const float* xr = x + a * n * inner + c;
                    float sum = 0.0f;
                    for (std::int64_t i = 0; i < n; ++i) sum = half ? r16(sum + xr[i * inner]) : sum + xr[i * inner];
                    o[a * inner + c] = sum;
                }
            break;
        }
        case Op::concat: {
            const Argument& values = st.arg("values");
            std::int64_t outer, n, inner;
            split_at(os, norm_axis(program_.constant(var("axis")).i[0], os.size()), outer, n, inner);
            float* o = result(k);
            std::int64_t at = 0;
            for (int v : values.values) {
                const auto& vs = program_.type_of(v).shape;
                const std::int64_t part = vs[std::size_t(norm_axis(program_.constant(var("axis")).i[0], os.size()))] * inner;
                const float* src = value(v);
                for (std::int64_t a = 0; a < outer; ++a)
                    std::memcpy(o + a * n * inner + at, src + a * part, sizeof(float) * std::size_t(part));
                at += part;
            }
            return;  // copies
        }
        case Op::constant: return;
    }
    round_to_fp16(result(k), std::size_t(count));
}

}  // namespace ane::mil
