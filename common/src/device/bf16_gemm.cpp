// bf16 products with fp32 accumulation on oneDNN: per shape, a matmul primitive whose bf16
// operands take the layouts oneDNN prefers, and two reorders that round the caller's fp32
// operands into them. The bf16 copies live in two scratch buffers shared by all shapes.
#include "ane/device/gemm.hpp"

#include <map>
#include <tuple>
#include <vector>

#include "ane/error.hpp"

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

struct Bf16Gemm::Impl {
    using Key = std::tuple<bool, bool, int, int, int, int, int, int, float, float>;
    struct Plan {
        dnnl::matmul product;
        dnnl::reorder round_a, round_b;
        dnnl::memory::desc a32, b32, c32, a16, b16;
    };
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    std::map<Key, Plan> plans;
    std::vector<char> scratch_a, scratch_b;

    Plan make_plan(bool ta, bool tb, int M, int N, int K, float alpha, int lda, int ldb, int ldc, float beta) {
        using md = dnnl::memory::desc;
        using dt = dnnl::memory::data_type;
        const md a32({M, K}, dt::f32, ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
        const md b32({K, N}, dt::f32, tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
        const md c32({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
        const md a_any({M, K}, dt::bf16, dnnl::memory::format_tag::any);
        const md b_any({K, N}, dt::bf16, dnnl::memory::format_tag::any);
        dnnl::primitive_attr attr;
        if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
        if (beta != 0.0f) {
            dnnl::post_ops ops;
            ops.append_sum(beta);
            attr.set_post_ops(ops);
        }
        const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_any, b_any, c32), attr, engine);
        Plan p;
        p.product = dnnl::matmul(pd);
        p.a32 = a32, p.b32 = b32, p.c32 = c32;
        p.a16 = pd.src_desc(), p.b16 = pd.weights_desc();
        p.round_a = dnnl::reorder(dnnl::reorder::primitive_desc(engine, a32, engine, p.a16));
        p.round_b = dnnl::reorder(dnnl::reorder::primitive_desc(engine, b32, engine, p.b16));
        return p;
    }
};

Bf16Gemm::Bf16Gemm() : impl_(std::make_unique<Impl>()) {}
Bf16Gemm::~Bf16Gemm() = default;

std::size_t Bf16Gemm::shapes() const { return impl_->plans.size(); }

void Bf16Gemm::operator()(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                          const float* B, int ldb, float beta, float* C, int ldc) {
    try {
        const Impl::Key key{trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta};
        auto it = impl_->plans.find(key);
        if (it == impl_->plans.end())
            it = impl_->plans.emplace(key, impl_->make_plan(trans_a, trans_b, M, N, K, alpha, lda, ldb, ldc, beta)).first;
        const Impl::Plan& p = it->second;
        auto& sa = impl_->scratch_a;
        auto& sb = impl_->scratch_b;
        if (sa.size() < p.a16.get_size()) sa.resize(p.a16.get_size());
        if (sb.size() < p.b16.get_size()) sb.resize(p.b16.get_size());
        dnnl::engine& eng = impl_->engine;
        dnnl::memory a32(p.a32, eng, const_cast<float*>(A)), b32(p.b32, eng, const_cast<float*>(B));
        dnnl::memory a16(p.a16, eng, sa.data()), b16(p.b16, eng, sb.data()), c32(p.c32, eng, C);
        p.round_a.execute(impl_->stream, a32, a16);
        p.round_b.execute(impl_->stream, b32, b16);
        p.product.execute(impl_->stream, {{DNNL_ARG_SRC, a16}, {DNNL_ARG_WEIGHTS, b16}, {DNNL_ARG_DST, c32}});
        impl_->stream.wait();
    } catch (const dnnl::error& e) {
        throw Error("oneDNN bf16 matmul failed on " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                    std::to_string(K) + ": " + e.what());
    }
}

#else

struct Bf16Gemm::Impl {};
Bf16Gemm::Bf16Gemm() { throw Error("bf16 products: this build has no oneDNN"); }
Bf16Gemm::~Bf16Gemm() = default;
std::size_t Bf16Gemm::shapes() const { return 0; }
void Bf16Gemm::operator()(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int) {}

#endif

}  // namespace ane
