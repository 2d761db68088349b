#pragma once
// The cpu backend: float32 products on OpenBLAS, attention and elementwise kernels on OpenMP.
// The ANE simulator derives from it: what spec/ane.md §6 keeps on the CPU runs here.
#include <memory>
#include <string>
#include <vector>

#include "ane/device/device.hpp"
#include "ane/spin_pool.hpp"

namespace ane {

class CpuDevice : public Device {
public:
    CpuDevice(int threads, GemmLibrary gemm, Precision precision = Precision::fp32);
    std::string name() const override;
    std::string describe() const override;
    int threads() const override { return threads_; }

    void matmul_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha,
                        float beta) override;
    void matmul_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX, float alpha,
                           float beta) override;
    void matmul_weight_grad(const float* dY, const float* X, int M, int N, int K, float* dW, float alpha) override;
    // bf16 products keep each weight packed until weights_changed().
    void weight_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha,
                        float beta) override;
    void weight_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX, float alpha,
                           float beta) override;
    void weights_changed() override { gemm_.forget_weights(); }
    // With oneDNN and a batch of fp32 products: panels of rows (L2-sized), each made and
    // multiplied by one thread, so that a made weight is never written to memory whole.
    void made_matmul_forward(const float* X, const WeightRows& rows, int M, int N, int K, float* Y, float alpha,
                             float beta) override;
    // One token: the encoded rows stream through the pool's kernels; a batch: tiles of rows
    // decoded on all threads, then one product per tile.
    void quant_matmul_forward(const float* X, const QuantMatrix& W, int M, float* Y, float alpha,
                              float beta) override;
    void attention_forward(const float* q, const float* k, const float* v, int B, int S, int nh, int nkv, int hd,
                           float* o, float* probs) override;
    void attention_backward(const float* q, const float* k, const float* v, const float* probs, const float* dout,
                            int B, int S, int nh, int nkv, int hd, float* dq, float* dk, float* dv) override;
    // On the bounded-spin pool, tasks handed out one at a time.
    void parallel_for(int n, const std::function<void(int, int)>& body) override;
    // The matrix-product library line (which library ran which shapes).
    std::string kernel_report() const override;

protected:
    Gemm gemm_;

private:
    // Products of at most this many rows of X (a prompt's) run on the pool: see pool_matmul_forward.
    static constexpr int kPoolRows = 512;
    void pool_matmul_forward(const float* X, const float* W, int M, int N, int K, float* Y, float alpha, float beta);
    int threads_;
    // One token's products (M = 1): own kernel over a bounded-spin pool, made at first use;
    // OpenBLAS's sgemv under --gemm openblas.
    std::unique_ptr<SpinPool> pool_;
    SpinPool& pool();
    std::vector<float> decoded_;  // a tile of decoded weight rows (batched quantized products)
    std::vector<std::vector<float>> panels_;  // by thread: a panel of made weight rows
};

// Rows per panel of CpuDevice::made_matmul_forward for an N x K weight.
int made_panel_rows(int N, int K, int threads);

// The fp16 Neural Engine simulator and the Neural Engine itself (device/ane/ane_device.cpp):
// the same kernels, surfaces and staging, run by mil::Interpreter or by Apple's runtime.
std::unique_ptr<Device> make_ane_sim_device(const DeviceOptions& options);
std::unique_ptr<Device> make_ane_device(const DeviceOptions& options);
// The framework `ane` loads: ANE_FRAMEWORK when set (the tests' stand-in), else Apple's path.
std::string ane_framework_path();
// Throws ane::Error (one line, exit 1) unless that framework loads with the classes it needs.
void check_ane_framework();

}  // namespace ane
