#pragma once
// The compute backend interface. Two levels: primitives (GEMMs, attention) and the blocks an
// Apple Neural Engine program fuses (spec/ane.md §5: sdpaFwd, ffnFused, the backward blocks).
// The model calls the blocks; their default implementations here compose the primitives,
// which is all the `cpu` device needs, while `ane-sim` runs each block as one MIL program.
// Activations are token-major [T, C]; weights are [out, in] row-major.
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>
#include <memory>
#include <string>

#include "ane/device/gemm.hpp"

namespace ane {

class QuantMatrix;

// The seven projections of a layer, named so that a device can keep one staged copy of each
// layer's weight and one compiled kernel per shape.
enum class Projection { wq, wk, wv, wo, w1, w3, w2 };
const char* projection_name(Projection p);

// Rows [r0, r1) of a weight [N, K] as a forward pass reads it, made into out (row-major, K
// floats a row): MeZO's θ + c·z, made a panel at a time right before the product that reads it.
// Called exactly once for every row, on disjoint ranges, possibly from several threads at once.
using WeightRows = std::function<void(std::int64_t r0, std::int64_t r1, float* out)>;

// One attention block's geometry: B sequences of S tokens, grouped-query heads.
struct AttentionShape {
    int B = 0, S = 0, heads = 0, kv_heads = 0, head_dim = 0;
    int tokens() const { return B * S; }
    int q_dim() const { return heads * head_dim; }
    int kv_dim() const { return kv_heads * head_dim; }
};

// RoPE tables [positions, head_dim/2] (kernels::rope_tables) and the θ they were made from.
struct RopeTables {
    const float* cos = nullptr;
    const float* sin = nullptr;
    double theta = 10000.0;
    std::vector<double> divisors;  // rope scaling (ModelConfig::rope_divisors), empty when none
};

// Where a backend's time went, for the efficiency report.
struct DeviceProfile {
    double matmul_s = 0, attention_s = 0, elementwise_s = 0;
    double kernel_s = 0;  // ANE kernels: surfaces written, program run, outputs read
    double matmul_flops = 0, attention_flops = 0;
    void reset() { *this = DeviceProfile{}; }
};

class Device {
public:
    virtual ~Device() = default;
    virtual std::string name() const = 0;
    // One line for reports: backend, library, kernels, threads.
    virtual std::string describe() const = 0;
    virtual int threads() const = 0;

    // Y[M,N] = alpha X[M,K] · W[N,K]^T + beta Y          (a forward projection)
    virtual void matmul_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha = 1.0f,
                                float beta = 0.0f) = 0;
    // dX[M,K] = alpha dY[M,N] · W[N,K] + beta dX          (the input gradient)
    virtual void matmul_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX,
                                   float alpha = 1.0f, float beta = 0.0f) = 0;
    // dW[N,K] += alpha dY[M,N]^T · X[M,K]                 (the weight gradient, accumulated)
    virtual void matmul_weight_grad(const float* dY, const float* X, int M, int N, int K, float* dW,
                                    float alpha = 1.0f) = 0;

    // matmul_forward and matmul_input_grad with W one of the model's weights, unchanged until
    // the next weights_changed(): a device may keep W converted between calls (the cpu
    // device's bf16 products keep it packed). The blocks below pass their weights through here.
    virtual void weight_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha = 1.0f,
                                float beta = 0.0f) {
        matmul_forward(X, W, M, N, K, Y, alpha, beta);
    }
    virtual void weight_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX,
                                   float alpha = 1.0f, float beta = 0.0f) {
        matmul_input_grad(dY, W, M, N, K, dX, alpha, beta);
    }

    // Y[M,N] = alpha X[M,K] · W[N,K]^T + beta Y with W made by `rows` (see WeightRows). The
    // default makes W whole into scratch and runs matmul_forward.
    virtual void made_matmul_forward(const float* X, const WeightRows& rows, int M, int N, int K, float* Y,
                                     float alpha = 1.0f, float beta = 0.0f);

    // Y[M,N] = alpha X[M,K] · Wᵀ + beta Y with W [N,K] kept in its encoding (inference on
    // F16/BF16/quantized weights). The default decodes W a tile of rows at a time into float32
    // and runs matmul_forward on each tile.
    virtual void quant_matmul_forward(const float* X, const QuantMatrix& W, int M, float* Y, float alpha = 1.0f,
                                      float beta = 0.0f);

    virtual void attention_forward(const float* q, const float* k, const float* v, int B, int S, int nh, int nkv,
                                   int hd, float* o, float* probs) = 0;
    virtual void attention_backward(const float* q, const float* k, const float* v, const float* probs,
                                    const float* dout, int B, int S, int nh, int nkv, int hd, float* dq, float* dk,
                                    float* dv) = 0;

    // --- Blocks. Each default composes the primitives above; a device may fuse them. Their
    // weights are the model's, unchanged until weights_changed(). ---

    // The blocks that follow process B sequences of S tokens (T = B·S rows): a device that
    // compiles its kernels per sequence length takes S from here.
    virtual void begin_pass(int /*B*/, int /*S*/) {}

    // Y[M,N] = alpha X · Wᵀ + beta Y for one of a layer's projections.
    virtual void projection_forward(Projection, const float* X, const float* W, int M, int N, int K, float* Y,
                                    float alpha = 1.0f, float beta = 0.0f);
    // dX[M,K] = alpha dY · W + beta dX (ffnBwdW2t for w2, wotBwd for wo, qBwd for wq).
    virtual void projection_input_grad(Projection, const float* dY, const float* W, int M, int N, int K, float* dX,
                                       float alpha = 1.0f, float beta = 0.0f);
    // The three projections of xnorm [T, dim] (before RoPE): q [T, q_dim], k, v [T, kv_dim].
    virtual void qkv_forward(const float* xnorm, const float* wq, const float* wk, const float* wv, int T, int dim,
                             int q_dim, int kv_dim, float* q, float* k, float* v);
    // sdpaFwd: q = xnorm Wqᵀ, k, v likewise; RoPE on q and k (left rotated in q, k); o = causal
    // attention. probs [B, heads, S, S] is left for sdpa_backward (a device whose backward
    // recomputes them may leave it untouched).
    virtual void sdpa_forward(const float* xnorm, const float* wq, const float* wk, const float* wv, int dim,
                              const AttentionShape& shape, const RopeTables& rope, float* q, float* k, float* v,
                              float* o, float* probs);
    // sdpaBwd1 + sdpaBwd2: dq, dk, dv (in the rotated frame, before RoPE backward) from dout.
    virtual void sdpa_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout,
                               const AttentionShape& shape, float* dq, float* dk, float* dv);
    // ffnFused: h1 = f W1ᵀ, h3 = f W3ᵀ, g = SiLU(h1)·h3, next = x2 + alpha g W2ᵀ.
    virtual void ffn_forward(const float* f, const float* x2, const float* w1, const float* w3, const float* w2, int T,
                             int D, int H, float alpha, float* h1, float* h3, float* g, float* next);
    // ffnBwdW13t: df[T,D] = dh1 W1 + dh3 W3 (overwritten).
    virtual void ffn_input_grad(const float* dh1, const float* dh3, const float* w1, const float* w3, int T, int H,
                                int D, float* df);
    // kvBwd: da[T,D] += dk Wk + dv Wv.
    virtual void kv_input_grad(const float* dk, const float* dv, const float* wk, const float* wv, int T, int KV, int D,
                               float* da);

    // Calls body(begin, end) on the device's threads over ranges covering [0, n) (the KV-cache
    // attention of decoding, whose tasks take microseconds). The default: OpenMP.
    virtual void parallel_for(int n, const std::function<void(int, int)>& body);

    // The model's weights changed (an optimizer update, a perturbation): a device holding
    // staged copies writes them again before their next use.
    virtual void weights_changed() {}
    // Lines for the efficiency report beyond the profile (kernels, surfaces); empty for cpu.
    virtual std::string kernel_report() const { return {}; }

    DeviceProfile& profile() { return profile_; }

protected:
    DeviceProfile profile_;
};

// RoPE on q and k, then causal attention: the part of sdpa_forward after the projections
// (shared with the LoRA path, which adds adapters between the two).
void rope_and_attention(Device& device, const AttentionShape& shape, const RopeTables& rope, float* q, float* k,
                        const float* v, float* o, float* probs);

// How the ANE devices split the work (spec/ane.md §6).
enum class AneMode { full, matmul, cpu_bwd };
struct DeviceOptions {
    int threads = 0;
    AneMode ane_mode = AneMode::full;
    // fp16 accumulation in matmul/conv/reduce_sum/softmax (default fp32; ANE_SIM_ACCUM=fp16).
    bool fp16_accumulate = false;
    // MeZO with a frozen base (spec §5.5): the base weights are baked into conv kernels
    // (conv1x1 per projection, Q/K/V and FFN fused per layer). Forward only: ffn_forward
    // then leaves h1, h3 and g as they were.
    bool bake_frozen_weights = false;
    // The library of the cpu device's matrix products (--gemm).
    GemmLibrary gemm = GemmLibrary::automatic;
    // bf16 products with fp32 accumulation (--precision bf16; cpu device only).
    Precision precision = Precision::fp32;
};
AneMode parse_ane_mode(const std::string& text);  // full | matmul | cpu-bwd, else UsageError
const char* ane_mode_name(AneMode mode);
// The options of the tools' --threads, --ane-mode, --gemm and --precision, with the accumulator
// width from the environment (ANE_SIM_ACCUM=fp32|fp16; anything else is a usage error).
DeviceOptions device_options(int threads, const std::string& ane_mode, const std::string& gemm = "auto",
                             const std::string& precision = "fp32");

// Throws a UsageError naming the known devices unless `name` is one this build has.
void check_device(const std::string& name);
// "cpu" and "ane-sim" ("ane" is named in the error until its runtime exists).
std::unique_ptr<Device> make_device(const std::string& name, int threads);
std::unique_ptr<Device> make_device(const std::string& name, const DeviceOptions& options);

// Sets the thread count of OpenMP and OpenBLAS; 0 means all cores.
int set_compute_threads(int threads);
// OpenBLAS's build and kernel ("OpenBLAS 0.3.21 ... SkylakeX, OpenMP").
std::string blas_description();

// Times a scope into one of the profile's counters.
class ScopedTimer {
public:
    explicit ScopedTimer(double& into) : into_(into), start_(std::chrono::steady_clock::now()) {}
    ~ScopedTimer() {
        into_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    }

private:
    double& into_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace ane
