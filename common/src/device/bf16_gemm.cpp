// bf16 products with fp32 accumulation: our own AVX512_BF16 kernel (bf16_gemm_avx512.cpp),
// which rounds the operands as it packs them and keeps weights packed; on a CPU with AMX, or
// asked for, oneDNN's matmul (a primitive per shape on plain bf16 operands, which each call
// rounds from the caller's fp32 ones into two scratch buffers shared by all shapes). On Zen 5 a
// training step with ours takes 0.97-1.10 of the time with oneDNN 2.6's at 1 thread and
// 0.90-1.05 at 2 (README).
#include "ane/device/gemm.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "ane/error.hpp"
#include "ane/half.hpp"
#include "ane/device/bf16_gemm_avx512.hpp"

#if defined(ANE_HAVE_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace ane {

std::string bf16_missing() {
#if defined(ANE_HAVE_ONEDNN)
    const unsigned isa = unsigned(dnnl_get_effective_cpu_isa());
    const unsigned bf16 = unsigned(dnnl_cpu_isa_avx512_core_bf16);
    if ((isa & bf16) == bf16) return {};
    return "this CPU has no bf16 instructions (AVX512_BF16 or AMX); " + onednn_description();
#else
    return "this build has no oneDNN";
#endif
}

Precision parse_precision(const std::string& text) {
    if (text == "fp32") return Precision::fp32;
    if (text != "bf16") throw usage_error("--precision ", text, ": unknown precision (fp32 or bf16)");
    if (const std::string why = bf16_missing(); !why.empty()) throw usage_error("--precision bf16: ", why);
    return Precision::bf16;
}

const char* precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

#if defined(ANE_HAVE_ONEDNN)

namespace {

// A stored operand (rows x cols, leading dimension ld) rounded to bf16, dense. Our own pass,
// parallel, instead of oneDNN's reorders into its blocked layouts: those ran on one thread
// and took a fifth of a stories15M step (the classifier's 32000-row operands ~15 ms each).
// oneDNN's matmul on plain layouts is 0-16% slower per product (Zen 5), less than that cost.
void round_rows(const float* src, int rows, int cols, int ld, std::uint16_t* dst) {
    const std::int64_t n = std::int64_t(rows) * cols;
    if (ld == cols) {
        constexpr std::int64_t kChunk = 1 << 16;
#pragma omp parallel for schedule(static) if (n > kChunk)
        for (std::int64_t at = 0; at < n; at += kChunk)
            float_to_bf16(src + at, dst + at, std::size_t(std::min(kChunk, n - at)));
        return;
    }
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int r = 0; r < rows; ++r)
        float_to_bf16(src + std::int64_t(r) * ld, dst + std::int64_t(r) * cols, std::size_t(cols));
}

// Our kernel unless oneDNN can use AMX's tiles, which it cannot match (not measured: no AMX here).
bool own_kernel() {
    const unsigned isa = unsigned(dnnl_get_effective_cpu_isa());
    const unsigned amx = unsigned(dnnl_cpu_isa_avx512_core_amx);
    return bf16::available() && (isa & amx) != amx;
}

}  // namespace

struct Bf16Gemm::Impl {
    bool own = own_kernel();
    // Weights packed for our kernel, by address and layout (op(B) = Wᵀ or W), until forgotten.
    struct Packed {
        bf16::PackedB bits;
        bool fresh = false;
    };
    std::map<std::pair<const float*, bool>, Packed> weights;
    using Key = std::tuple<bool, bool, int, int, int, int, float, float>;
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    struct Plan {
        dnnl::matmul product;
        dnnl::memory::desc a, b, c;
    };
    std::map<Key, Plan> plans;
    std::vector<std::uint16_t> a16, b16;

    // op(A) is M x K and op(B) K x N; a transposed operand is stored K x M (N x K) and is
    // handed to oneDNN as such, through its strides.
    Plan make_plan(bool ta, bool tb, int M, int N, int K, float alpha, int ldc, float beta) {
        using md = dnnl::memory::desc;
        using dt = dnnl::memory::data_type;
        const md a({M, K}, dt::bf16, ta ? dnnl::memory::dims{1, M} : dnnl::memory::dims{K, 1});
        const md b({K, N}, dt::bf16, tb ? dnnl::memory::dims{1, K} : dnnl::memory::dims{N, 1});
        const md c({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
        dnnl::primitive_attr attr;
        if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
        if (beta != 0.0f) {
            dnnl::post_ops ops;
            ops.append_sum(beta);
            attr.set_post_ops(ops);
        }
        return {dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), attr, engine)), a, b, c};
    }
};

Bf16Gemm::Bf16Gemm(Kernel kernel) : impl_(std::make_unique<Impl>()) {
    if (kernel == Kernel::onednn) impl_->own = false;
}
Bf16Gemm::~Bf16Gemm() = default;

std::size_t Bf16Gemm::shapes() const { return impl_->plans.size(); }
const char* Bf16Gemm::kernel_name() const { return impl_->own ? "our AVX512_BF16 kernel" : "oneDNN"; }

void Bf16Gemm::weight_product(bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                              const float* B, int ldb, float beta, float* C, int ldc) {
    Impl& in = *impl_;
    if (!in.own || M <= 0 || N <= 0 || K <= 0)
        return (*this)(false, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    const int threads = omp_get_max_threads();
    Impl::Packed& w = in.weights[{B, trans_b}];
    if (!w.fresh || w.bits.K != K || w.bits.N != N) {
        bf16::pack_b(trans_b, K, N, B, ldb, w.bits, threads);
        w.fresh = true;
    }
    bf16::gemm(false, M, alpha, A, lda, w.bits, beta, C, ldc, threads);
}

void Bf16Gemm::forget_weights() {
    for (auto& [key, w] : impl_->weights) w.fresh = false;
}

void Bf16Gemm::operator()(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                          const float* B, int ldb, float beta, float* C, int ldc) {
    Impl& in = *impl_;
    if (in.own)
        return bf16::gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, omp_get_max_threads());
    try {
        const Impl::Key key{trans_a, trans_b, M, N, K, ldc, alpha, beta};
        auto it = in.plans.find(key);
        if (it == in.plans.end())
            it = in.plans.emplace(key, in.make_plan(trans_a, trans_b, M, N, K, alpha, ldc, beta)).first;
        in.a16.resize(std::max(in.a16.size(), std::size_t(M) * K));
        in.b16.resize(std::max(in.b16.size(), std::size_t(K) * N));
        round_rows(A, trans_a ? K : M, trans_a ? M : K, lda, in.a16.data());
        round_rows(B, trans_b ? N : K, trans_b ? K : N, ldb, in.b16.data());
        const Impl::Plan& p = it->second;
        dnnl::memory a(p.a, in.engine, in.a16.data()), b(p.b, in.engine, in.b16.data()), c(p.c, in.engine, C);
        p.product.execute(in.stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
        in.stream.wait();
    } catch (const dnnl::error& e) {
        throw Error("oneDNN bf16 matmul failed on " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                    std::to_string(K) + ": " + e.what());
    }
}

#else

struct Bf16Gemm::Impl {};
Bf16Gemm::Bf16Gemm(Kernel) { throw Error("bf16 products: this build has no oneDNN"); }
Bf16Gemm::~Bf16Gemm() = default;
std::size_t Bf16Gemm::shapes() const { return 0; }
const char* Bf16Gemm::kernel_name() const { return "none"; }
void Bf16Gemm::weight_product(bool, int, int, int, float, const float*, int, const float*, int, float, float*, int) {}
void Bf16Gemm::forget_weights() {}
void Bf16Gemm::operator()(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int) {}

#endif

}  // namespace ane
