#pragma once
// The compute backend interface: the few operations a transformer needs. The model code
// calls only these; `cpu` implements them on OpenBLAS + OpenMP, the ANE backends later.
// Activations are token-major [T, C]; weights are [out, in] row-major.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace ane {

// Where a backend's time went, for the efficiency report.
struct DeviceProfile {
    double matmul_s = 0, attention_s = 0, elementwise_s = 0;
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

    virtual void attention_forward(const float* q, const float* k, const float* v, int B, int S, int nh, int nkv,
                                   int hd, float* o, float* probs) = 0;
    virtual void attention_backward(const float* q, const float* k, const float* v, const float* probs,
                                    const float* dout, int B, int S, int nh, int nkv, int hd, float* dq, float* dk,
                                    float* dv) = 0;

    DeviceProfile& profile() { return profile_; }

protected:
    DeviceProfile profile_;
};

// Throws a UsageError naming the known devices unless `name` is one this build has.
void check_device(const std::string& name);
// "cpu" everywhere; "ane" and "ane-sim" are named in the error until they exist.
std::unique_ptr<Device> make_device(const std::string& name, int threads);

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
