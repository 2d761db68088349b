// The ANE devices, `ane` and `ane-sim`: every block spec/ane.md §6 puts on the Neural Engine is
// one generated MIL program with fp16 [1, C, 1, S] surfaces, run by a KernelRuntime (Apple's
// runtime, or mil::Interpreter on the CPU); the rest stays on the cpu device in fp32. Weights
// are staged into their surface region once per weights_changed(), activations written per
// evaluation; every host access to a surface is between its lock and unlock.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "ane/device/cpu_device.hpp"
#include "ane/error.hpp"
#include "ane/half.hpp"
#include "ane/log.hpp"
#include "ane/mil/generators.hpp"
#include "kernel_runtime.hpp"
#include "surface_io.hpp"

namespace ane {

namespace {

using std::uint16_t;

struct CompiledKernel {
    std::string key;  // in the device's kernel table: name and shape, or name and layer
    mil::Kernel kernel;
    // Its one output surface is shared by all layers, and by kernels of the same program text
    // (woFwd, wotBwd and qBwd when the projections are square).
    std::shared_ptr<CompiledProgram> program;
    std::uint64_t version = 0;     // of the baked weights (conv kernels)
    double seconds = 0;
    std::int64_t calls = 0;
};

// One input surface: a kernel's per-layer copy with that layer's weights staged.
struct InputSurface {
    std::unique_ptr<BoundInput> bound;
    Surface& surface() { return bound->surface(); }
    std::uint64_t version = ~std::uint64_t(0);
};

const char* forward_kernel_name(Projection p) {
    switch (p) {
        case Projection::wq: return "wqFwd";
        case Projection::wk:
        case Projection::wv: return "wkvFwd";
        case Projection::wo: return "woFwd";
        case Projection::w1:
        case Projection::w3: return "w13Fwd";
        case Projection::w2: return "w2Fwd";
    }
    return "?";
}

const char* input_grad_kernel_name(Projection p) {
    switch (p) {
        case Projection::w2: return "ffnBwdW2t";
        case Projection::wo: return "wotBwd";
        case Projection::wq: return "qBwd";
        case Projection::wk: return "kBwd";
        case Projection::wv: return "vBwd";
        case Projection::w1: return "w1Bwd";
        case Projection::w3: return "w3Bwd";
    }
    return "?";
}

class AneDevice final : public CpuDevice {
public:
    AneDevice(const DeviceOptions& o, std::unique_ptr<KernelRuntime> runtime)
        : CpuDevice(o.threads, o.gemm), options_(o), runtime_(std::move(runtime)) {}

    std::string name() const override { return runtime_->name(); }
    std::string describe() const override {
        return name() + ": " + runtime_->describe() + ", " + describe_mode() + "; CPU parts on " +
               CpuDevice::describe();
    }

    void begin_pass(int B, int S) override {
        batch_ = B;
        seq_ = S;
    }
    void weights_changed() override {
        CpuDevice::weights_changed();
        ++version_;
    }

    void projection_forward(Projection p, const float* X, const float* W, int M, int N, int K, float* Y, float alpha,
                            float beta) override {
        const int S = seq_for(M);
        profile_.matmul_flops += 2.0 * M * N * K;
        if (options_.bake_frozen_weights) {
            CompiledKernel& k = baked(std::string("conv_") + projection_name(p), W, [&] {
                return mil::conv1x1(std::string("conv_") + projection_name(p), K, N, S, W);
            });
            project(k, input(k, nullptr), S, X, K, Y, N, M, alpha, beta);
            return;
        }
        const std::string name = forward_kernel_name(p);
        CompiledKernel& k = compiled(name, {K, N, S}, [&] { return mil::dynamic_matmul(name, K, N, S); });
        InputSurface& in = input(k, W, [&](uint16_t* d) { surface::write_transposed(d, S + N, S, W, N, K, scratch_); });
        project(k, in, S + N, X, K, Y, N, M, alpha, beta);
    }

    void projection_input_grad(Projection p, const float* dY, const float* W, int M, int N, int K, float* dX,
                               float alpha, float beta) override {
        if (!ane_backward()) return CpuDevice::projection_input_grad(p, dY, W, M, N, K, dX, alpha, beta);
        const int S = seq_for(M);
        profile_.matmul_flops += 2.0 * M * N * K;
        const std::string name = input_grad_kernel_name(p);
        CompiledKernel& k = compiled(name, {N, K, S}, [&] { return mil::dynamic_matmul(name, N, K, S); });
        InputSurface& in = input(k, W, [&](uint16_t* d) { surface::write_rows(d, S + K, S, W, N, K); });
        project(k, in, S + K, dY, N, dX, K, M, alpha, beta);
    }

    void qkv_forward(const float* xnorm, const float* wq, const float* wk, const float* wv, int T, int D, int Q,
                     int KV, float* q, float* k, float* v) override {
        if (!options_.bake_frozen_weights) return Device::qkv_forward(xnorm, wq, wk, wv, T, D, Q, KV, q, k, v);
        const int S = seq_for(T);
        profile_.matmul_flops += 2.0 * T * D * double(Q + 2 * KV);
        CompiledKernel& kern = baked("qkvConv", wq, [&] { return mil::qkv_conv(D, Q, KV, S, wq, wk, wv); });
        each_sequence(
            kern, input(kern, nullptr), T / S,
            [&](std::int64_t r, uint16_t* in) { surface::write_tokens(in, S, 0, xnorm + r * D, S, D, D, scratch_); },
            [&](std::int64_t r, const uint16_t* out) {
                surface::read_tokens(out, S, 0, Q, q + r * Q, Q, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, Q, KV, k + r * KV, KV, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, Q + KV, KV, v + r * KV, KV, 1.0f, 0.0f, scratch_);
            });
    }

    void sdpa_forward(const float* xnorm, const float* wq, const float* wk, const float* wv, int D,
                      const AttentionShape& s, const RopeTables& rope, float* q, float* k, float* v, float* o,
                      float* probs) override {
        if (!fused_forward()) return Device::sdpa_forward(xnorm, wq, wk, wv, D, s, rope, q, k, v, o, probs);
        const int S = s.S, Q = s.q_dim(), KV = s.kv_dim(), row = S + Q + 2 * KV;
        profile_.matmul_flops += 2.0 * s.tokens() * D * double(Q + 2 * KV);
        profile_.attention_flops += 2.0 * s.B * s.heads * double(S) * (S + 1) * s.head_dim;
        CompiledKernel& kern = compiled("sdpaFwd", {D, s.heads, s.kv_heads, s.head_dim, S},
                                        [&] {
                                            return mil::sdpa_forward(
                                                {D, s.heads, s.kv_heads, s.head_dim, S, rope.theta, rope.divisors});
                                        });
        InputSurface& in = input(kern, wq, [&](uint16_t* d) {
            surface::write_transposed(d, row, S, wq, Q, D, scratch_);
            surface::write_transposed(d, row, S + Q, wk, KV, D, scratch_);
            surface::write_transposed(d, row, S + Q + KV, wv, KV, D, scratch_);
        });
        each_sequence(
            kern, in, s.B,
            [&](std::int64_t r, uint16_t* d) { surface::write_tokens(d, row, 0, xnorm + r * D, S, D, D, scratch_); },
            [&](std::int64_t r, const uint16_t* out) {
                surface::read_tokens(out, S, 0, Q, o + r * Q, Q, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, Q, Q, q + r * Q, Q, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, 2 * Q, KV, k + r * KV, KV, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, 2 * Q + KV, KV, v + r * KV, KV, 1.0f, 0.0f, scratch_);
            });
        if (!ane_backward()) {  // the cpu backward reads the probabilities the fused kernel keeps to itself
            scratch_o_.resize(std::size_t(s.tokens()) * std::size_t(Q));
            CpuDevice::attention_forward(q, k, v, s.B, S, s.heads, s.kv_heads, s.head_dim, scratch_o_.data(), probs);
        }
    }

    void sdpa_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout,
                       const AttentionShape& s, float* dq, float* dk, float* dv) override {
        if (!ane_backward()) return CpuDevice::sdpa_backward(q, k, v, probs, dout, s, dq, dk, dv);
        const int S = s.S, Q = s.q_dim(), KV = s.kv_dim(), hd = s.head_dim, nh = s.heads, SC = nh * S;
        const int r = s.heads / s.kv_heads;
        profile_.attention_flops += 4.0 * s.B * nh * double(S) * (S + 1) * hd;
        const mil::AttentionGeometry g{Q, nh, s.kv_heads, hd, S, 0, {}};  // no model width or RoPE in these kernels
        CompiledKernel& k1 = compiled("sdpaBwd1", {nh, hd, S}, [&] { return mil::sdpa_backward1(g); });
        CompiledKernel& k2 = compiled("sdpaBwd2", {nh, hd, S}, [&] { return mil::sdpa_backward2(g); });
        InputSurface& in1 = input(k1, nullptr);
        InputSurface& in2 = input(k2, nullptr);
        for (int b = 0; b < s.B; ++b) {
            const std::int64_t t0 = std::int64_t(b) * S;
            {
                SurfaceWrite w(in1.surface());
                uint16_t* a = w.data();
                // Q_rot | K_tiled | V_tiled | dO, K and V tiled so that query head h reads KV head h / r.
                surface::write_tokens(a, S, 0, q + t0 * Q, S, Q, Q, scratch_);
                for (int h = 0; h < nh; ++h) {
                    const std::int64_t src = t0 * KV + (h / r) * hd;
                    surface::write_tokens(a + std::int64_t(Q + h * hd) * S, S, 0, k + src, S, hd, KV, scratch_);
                    surface::write_tokens(a + std::int64_t(2 * Q + h * hd) * S, S, 0, v + src, S, hd, KV, scratch_);
                }
                surface::write_tokens(a, S, 3 * Q * S, dout + t0 * Q, S, Q, Q, scratch_);
            }
            evaluate(k1, in1);
            {  // P | dP go across as they are; then Q_rot | K_tiled again.
                SurfaceWrite c(in2.surface());
                SurfaceRead p(k1.program->output());
                SurfaceRead a(in1.surface());
                std::memcpy(c.data(), p.data() + std::int64_t(Q) * S, sizeof(uint16_t) * std::size_t(2 * SC) * S);
                std::memcpy(c.data() + std::int64_t(2 * SC) * S, a.data(), sizeof(uint16_t) * std::size_t(2 * Q) * S);
            }
            evaluate(k2, in2);
            SurfaceRead o1(k1.program->output());
            SurfaceRead o2(k2.program->output());
            surface::read_tokens(o2.data(), S, 0, Q, dq + t0 * Q, Q, 1.0f, 0.0f, scratch_);
            for (int h = 0; h < nh; ++h) {  // the r query heads of a KV head sum into its gradient
                const float beta = h % r == 0 ? 0.0f : 1.0f;
                const std::int64_t dst = t0 * KV + (h / r) * hd;
                surface::read_tokens(o2.data(), S, Q + h * hd, hd, dk + dst, KV, 1.0f, beta, scratch_);
                surface::read_tokens(o1.data(), S, h * hd, hd, dv + dst, KV, 1.0f, beta, scratch_);
            }
        }
    }

    void ffn_forward(const float* f, const float* x2, const float* w1, const float* w3, const float* w2, int T, int D,
                     int H, float alpha, float* h1, float* h3, float* g, float* next) override {
        const int S = seq_for(T);
        if (options_.bake_frozen_weights) {
            profile_.matmul_flops += 6.0 * T * D * double(H);
            CompiledKernel& k = baked("ffnConv", w1, [&] { return mil::ffn_conv(D, H, S, alpha, w1, w3, w2); });
            each_sequence(
                k, input(k, nullptr), T / S,
                [&](std::int64_t t0, uint16_t* in) {
                    surface::write_tokens(in, 2 * S, 0, f + t0 * D, S, D, D, scratch_);
                    surface::write_tokens(in, 2 * S, S, x2 + t0 * D, S, D, D, scratch_);
                },
                [&](std::int64_t t0, const uint16_t* out) {
                    surface::read_tokens(out, S, 0, D, next + t0 * D, D, 1.0f, 0.0f, scratch_);
                });
            return;
        }
        if (!fused_forward()) return Device::ffn_forward(f, x2, w1, w3, w2, T, D, H, alpha, h1, h3, g, next);
        profile_.matmul_flops += 6.0 * T * D * double(H);
        const int row = 2 * S + 3 * H;
        CompiledKernel& k = compiled("ffnFused", {D, H, S, int(float_to_fp16(alpha))},
                                     [&] { return mil::ffn_fused(D, H, S, alpha); });
        InputSurface& in = input(k, w1, [&](uint16_t* d) {
            surface::write_transposed(d, row, 2 * S, w1, H, D, scratch_);
            surface::write_transposed(d, row, 2 * S + H, w3, H, D, scratch_);
            surface::write_rows(d, row, 2 * S + 2 * H, w2, D, H);
        });
        each_sequence(
            k, in, T / S,
            [&](std::int64_t t0, uint16_t* d) {
                surface::write_tokens(d, row, 0, f + t0 * D, S, D, D, scratch_);
                surface::write_tokens(d, row, S, x2 + t0 * D, S, D, D, scratch_);
            },
            [&](std::int64_t t0, const uint16_t* out) {
                surface::read_tokens(out, S, 0, D, next + t0 * D, D, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, D, H, h1 + t0 * H, H, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, D + H, H, h3 + t0 * H, H, 1.0f, 0.0f, scratch_);
                surface::read_tokens(out, S, D + 2 * H, H, g + t0 * H, H, 1.0f, 0.0f, scratch_);
            });
    }

    void ffn_input_grad(const float* dh1, const float* dh3, const float* w1, const float* w3, int T, int H, int D,
                        float* df) override {
        if (!ane_backward()) return CpuDevice::ffn_input_grad(dh1, dh3, w1, w3, T, H, D, df);
        two_matmul("ffnBwdW13t", dh1, dh3, w1, w3, T, H, D, df, 0.0f);
    }

    void kv_input_grad(const float* dk, const float* dv, const float* wk, const float* wv, int T, int KV, int D,
                       float* da) override {
        if (!ane_backward()) return CpuDevice::kv_input_grad(dk, dv, wk, wv, T, KV, D, da);
        two_matmul("kvBwd", dk, dv, wk, wv, T, KV, D, da, 1.0f);
    }

    std::string kernel_report() const override {
        std::string out;
        char line[256];
        std::snprintf(line, sizeof line, "%s: %d kernel compiles (%zu kernels now), %s\n", name().c_str(), compiles_,
                      kernels_.size(), describe_mode().c_str());
        out += line;
        if (runtime_->compile_limit() > 0) {
            std::snprintf(line, sizeof line, "  compiles in this process: %d of the limit %d\n",
                          runtime_->process_compiles(), runtime_->compile_limit());
            out += line;
        }
        out += "  kernel         programs    calls   ms/call   total s   input bytes  output bytes  input surfaces\n";
        // Baked kernels are one program per layer: their rows add up.
        struct Row {
            int programs = 0, surfaces = 0;
            std::int64_t calls = 0;
            double seconds = 0;
            std::size_t in = 0, out = 0;
        };
        std::map<std::string, Row> rows;
        std::map<std::string, int> surfaces;
        for (const auto& [key, s] : inputs_) ++surfaces[key.first];
        for (const auto& [key, k] : kernels_) {
            Row& r = rows[k.kernel.name + " " + std::to_string(k.kernel.input_bytes())];
            ++r.programs;
            r.calls += k.calls;
            r.seconds += k.seconds;
            r.in = k.kernel.input_bytes();
            r.out = k.kernel.output_bytes();
            r.surfaces += surfaces[key];
        }
        for (const auto& [key, r] : rows) {
            std::snprintf(line, sizeof line, "  %-14s %8d %8lld %9.3f %9.3f %13zu %13zu %15d\n",
                          key.substr(0, key.rfind(' ')).c_str(), r.programs, static_cast<long long>(r.calls),
                          r.calls ? 1000.0 * r.seconds / double(r.calls) : 0.0, r.seconds, r.in, r.out, r.surfaces);
            out += line;
        }
        std::size_t in_bytes = 0, out_bytes = 0;
        for (const auto& [key, s] : inputs_) in_bytes += kernels_.at(key.first).kernel.input_bytes();
        std::set<const CompiledProgram*> programs;
        for (const auto& [key, k] : kernels_)
            if (programs.insert(k.program.get()).second) out_bytes += k.kernel.output_bytes();
        std::snprintf(line, sizeof line, "  surfaces: %.2f MB of inputs (one per kernel and layer), %.2f MB of outputs (one per program)\n",
                      double(in_bytes) / 1e6, double(out_bytes) / 1e6);
        out += line;
        return out + "CPU parts' " + CpuDevice::kernel_report();
    }

private:
    DeviceOptions options_;
    // Destroyed in reverse: the inputs (requests) before their programs, the programs before
    // the runtime that compiled them.
    std::unique_ptr<KernelRuntime> runtime_;
    int batch_ = 1, seq_ = 0;
    std::uint64_t version_ = 0;
    int compiles_ = 0;
    std::map<std::string, CompiledKernel> kernels_;
    std::map<std::string, std::weak_ptr<CompiledProgram>> by_text_;  // weight-free programs, compiled once
    std::map<std::pair<std::string, const void*>, InputSurface> inputs_;
    std::vector<float> scratch_, scratch_o_;
    std::set<std::string> warned_;  // kernels whose hardware caveats were reported
    static constexpr std::size_t kSurfaceCeiling = 220000000;
    std::size_t input_bytes_ = 0;
    bool warned_ceiling_ = false;

    bool ane_backward() const { return options_.ane_mode == AneMode::full && !options_.bake_frozen_weights; }
    bool fused_forward() const { return options_.ane_mode != AneMode::matmul && !options_.bake_frozen_weights; }
    std::string describe_mode() const {
        return std::string("mode ") + (options_.bake_frozen_weights ? "conv (baked base)" : ane_mode_name(options_.ane_mode));
    }

    // The per-sequence length of a call of M rows: the pass's S when it divides M (a batch of
    // windows), else M itself (one chunk, e.g. a prompt).
    int seq_for(int M) const { return seq_ > 0 && M % seq_ == 0 ? seq_ : M; }

    CompiledKernel& compile(const std::string& key, const std::function<mil::Kernel()>& make) {
        // A recompiled kernel (baked weights) drops the requests bound to its old program first.
        for (auto it = inputs_.lower_bound({key, nullptr}); it != inputs_.end() && it->first.first == key;) {
            input_bytes_ -= kernels_.at(key).kernel.input_bytes();
            it = inputs_.erase(it);
        }
        CompiledKernel& k = kernels_[key];
        k.program.reset();
        k.key = key;
        k.kernel = make();
        // A program without baked weights is its text: one compile serves every kernel name.
        if (k.kernel.blobs.empty())
            if (auto shared = by_text_[k.kernel.text].lock()) {
                k.program = std::move(shared);
                return k;
            }
        mil::Program parsed;
        try {
            parsed = mil::parse_program(k.kernel.text, k.kernel.blobs);
        } catch (const mil::ParseError& e) {
            throw Error(name() + ": kernel " + k.kernel.name + " does not compile: " + e.what());
        }
        const auto warnings = mil::hardware_warnings(parsed);
        if (!warnings.empty() && warned_.insert(k.kernel.name).second)
            log::warn(name() + ": kernel " + k.kernel.name + " may not run as intended on the Neural Engine: " +
                      warnings.front() + (warnings.size() > 1 ? " (and " + std::to_string(warnings.size() - 1) + " more)" : ""));
        k.program = runtime_->compile(k.kernel, std::move(parsed));
        if (k.kernel.blobs.empty()) by_text_[k.kernel.text] = k.program;
        ++compiles_;
        return k;
    }

    // A kernel with dynamic weights, compiled once per shape.
    CompiledKernel& compiled(const std::string& name, const std::vector<int>& dims,
                             const std::function<mil::Kernel()>& make) {
        std::string key = name;
        for (int d : dims) key.append(" ").append(std::to_string(d));
        auto it = kernels_.find(key);
        return it != kernels_.end() ? it->second : compile(key, make);
    }

    // A kernel with baked weights: one per layer, compiled again after the weights change.
    CompiledKernel& baked(const std::string& name, const float* owner, const std::function<mil::Kernel()>& make) {
        char key[96];
        std::snprintf(key, sizeof key, "%s @%p", name.c_str(), static_cast<const void*>(owner));
        auto it = kernels_.find(key);
        if (it != kernels_.end() && it->second.version == version_) return it->second;
        CompiledKernel& k = compile(key, make);
        k.version = version_;
        return k;
    }

    // The input surface of kernel k for the layer whose weights start at `owner` (nullptr:
    // one surface for the kernel), its weight regions staged by `stage` when they are stale.
    InputSurface& input(CompiledKernel& k, const void* owner, const std::function<void(uint16_t*)>& stage = {}) {
        InputSurface& s = inputs_[{k.key, owner}];
        if (!s.bound) {
            s.bound = k.program->bind_input(k.kernel.name);
            input_bytes_ += k.kernel.input_bytes();
            if (input_bytes_ > kSurfaceCeiling && !warned_ceiling_) {
                warned_ceiling_ = true;
                log::warn(name() + ": the input surfaces pass " + std::to_string(kSurfaceCeiling / 1000000) +
                          " MB (a shorter --seq or --ane-mode cpu-bwd needs fewer); AutoANE reports the Neural "
                          "Engine slowing down twofold beyond ~220 MB (spec/ane.md §7)");
            }
        }
        if (stage && s.version != version_) {
            ScopedTimer t(profile_.kernel_s);
            SurfaceWrite w(s.surface());
            stage(w.data());
            s.version = version_;
        }
        return s;
    }

    void evaluate(CompiledKernel& k, InputSurface& in) {
        const auto t0 = std::chrono::steady_clock::now();
        k.program->evaluate(*in.bound);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        k.seconds += dt;
        profile_.kernel_s += dt;
        ++k.calls;
    }

    // Kernel k over `count` sequences of its S tokens: `write(first token, input)` fills the
    // activation regions with the input surface locked for writing, the kernel runs, then
    // `read(first token, output)` takes the results with the output locked for reading.
    template <typename Write, typename Read>
    void each_sequence(CompiledKernel& k, InputSurface& in, int count, Write&& write, Read&& read) {
        const std::int64_t S = k.kernel.out_spatial;
        for (int b = 0; b < count; ++b) {
            {
                SurfaceWrite w(in.surface());
                write(b * S, w.data());
            }
            evaluate(k, in);
            SurfaceRead out(k.program->output());
            read(b * S, out.data());
        }
    }

    // A one-input projection kernel over the M / S sequences of X [M, in]: each sequence's
    // activations into the first S columns of every row (`row` values long), the kernel run,
    // Y [M, out] = alpha · its output + beta · Y.
    void project(CompiledKernel& k, InputSurface& in, int row, const float* X, int in_ch, float* Y, int out_ch, int M,
                 float alpha, float beta) {
        const int S = k.kernel.out_spatial;
        each_sequence(
            k, in, M / S,
            [&](std::int64_t t0, uint16_t* d) { surface::write_tokens(d, row, 0, X + t0 * in_ch, S, in_ch, in_ch, scratch_); },
            [&](std::int64_t t0, const uint16_t* out) {
                surface::read_tokens(out, S, 0, out_ch, Y + t0 * out_ch, out_ch, alpha, beta, scratch_);
            });
    }

    // df = Aᵀ da + Bᵀ db (+ beta · df): ffnBwdW13t and kvBwd.
    void two_matmul(const char* name, const float* da, const float* db, const float* wa, const float* wb, int T, int IC,
                    int OC, float* out, float beta) {
        const int S = seq_for(T), row = 2 * S + 2 * OC;
        profile_.matmul_flops += 4.0 * T * IC * double(OC);
        CompiledKernel& k = compiled(name, {IC, OC, S}, [&] { return mil::two_matmul_backward(name, IC, OC, S); });
        InputSurface& in = input(k, wa, [&](uint16_t* d) {
            surface::write_rows(d, row, 2 * S, wa, IC, OC);
            surface::write_rows(d, row, 2 * S + OC, wb, IC, OC);
        });
        each_sequence(
            k, in, T / S,
            [&](std::int64_t t0, uint16_t* d) {
                surface::write_tokens(d, row, 0, da + t0 * IC, S, IC, IC, scratch_);
                surface::write_tokens(d, row, S, db + t0 * IC, S, IC, IC, scratch_);
            },
            [&](std::int64_t t0, const uint16_t* o) {
                surface::read_tokens(o, S, 0, OC, out + t0 * OC, OC, 1.0f, beta, scratch_);
            });
    }
};

}  // namespace

std::unique_ptr<Device> make_ane_sim_device(const DeviceOptions& options) {
    return std::make_unique<AneDevice>(options, make_interpreter_runtime(options.fp16_accumulate));
}

std::unique_ptr<Device> make_ane_device(const DeviceOptions& options) {
    return std::make_unique<AneDevice>(options, make_apple_runtime(ane_framework_path()));
}

std::string default_ane_framework_path() {
    return "/System/Library/PrivateFrameworks/AppleNeuralEngine.framework/AppleNeuralEngine";
}

std::string ane_framework_path() {
    const char* path = std::getenv("ANE_FRAMEWORK");
    return path && *path ? path : default_ane_framework_path();
}

void check_ane_framework() { probe_apple_runtime(ane_framework_path()); }

}  // namespace ane
