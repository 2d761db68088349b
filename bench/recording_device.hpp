#pragma once
// A Device that forwards to another and records the shape of every matrix product, so that a
// benchmark can replay the same products alone: the sgemm ceiling (on one library, or on the
// faster of the two per shape).
#include <cblas.h>

#include <memory>
#include <vector>

#include "ane/device/device.hpp"

namespace {

struct GemmShape {
    CBLAS_TRANSPOSE ta, tb;
    int m, n, k;
    float beta;
};

// Forwards to the cpu device and remembers every matrix product's shape.
class RecordingDevice final : public ane::Device {
public:
    explicit RecordingDevice(std::unique_ptr<ane::Device> inner) : inner_(std::move(inner)) {}
    std::vector<GemmShape> shapes;
    bool recording = true;
    std::string name() const override { return inner_->name(); }
    std::string describe() const override { return inner_->describe(); }
    int threads() const override { return inner_->threads(); }
    void matmul_forward(const float* X, const float* W, int M, int N, int K, float* Y, float a, float b) override {
        if (recording) shapes.push_back({CblasNoTrans, CblasTrans, M, N, K, b});
        inner_->matmul_forward(X, W, M, N, K, Y, a, b);
    }
    void matmul_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX, float a,
                           float b) override {
        if (recording) shapes.push_back({CblasNoTrans, CblasNoTrans, M, K, N, b});
        inner_->matmul_input_grad(dY, W, M, N, K, dX, a, b);
    }
    void matmul_weight_grad(const float* dY, const float* X, int M, int N, int K, float* dW, float a) override {
        if (recording) shapes.push_back({CblasTrans, CblasNoTrans, N, K, M, 1.0f});
        inner_->matmul_weight_grad(dY, X, M, N, K, dW, a);
    }
    // The model's weights go through these (the cpu device keeps them packed in bf16 until
    // weights_changed()), so that the step measured is the one ane-train runs.
    void weight_forward(const float* X, const float* W, int M, int N, int K, float* Y, float a, float b) override {
        if (recording) shapes.push_back({CblasNoTrans, CblasTrans, M, N, K, b});
        inner_->weight_forward(X, W, M, N, K, Y, a, b);
    }
    void weight_input_grad(const float* dY, const float* W, int M, int N, int K, float* dX, float a,
                           float b) override {
        if (recording) shapes.push_back({CblasNoTrans, CblasNoTrans, M, K, N, b});
        inner_->weight_input_grad(dY, W, M, N, K, dX, a, b);
    }
    void weights_changed() override { inner_->weights_changed(); }
    void attention_forward(const float* q, const float* k, const float* v, int B, int S, int nh, int nkv, int hd,
                           float* o, float* p) override {
        inner_->attention_forward(q, k, v, B, S, nh, nkv, hd, o, p);
    }
    void attention_backward(const float* q, const float* k, const float* v, const float* p, const float* d, int B,
                            int S, int nh, int nkv, int hd, float* dq, float* dk, float* dv) override {
        inner_->attention_backward(q, k, v, p, d, B, S, nh, nkv, hd, dq, dk, dv);
    }
    ane::DeviceProfile& inner_profile() { return inner_->profile(); }

private:
    std::unique_ptr<ane::Device> inner_;
};

// Runs the recorded products back to back on scratch buffers through `gemm`; time it.
inline void replay_gemms(const std::vector<GemmShape>& shapes, std::vector<float>& A, std::vector<float>& B,
                         std::vector<float>& C, ane::Gemm& gemm) {
    std::size_t biggest = 0;
    for (const auto& s : shapes)
        biggest = std::max({biggest, std::size_t(s.m) * s.k, std::size_t(s.k) * s.n, std::size_t(s.m) * s.n});
    if (A.size() < biggest) A.assign(biggest, 0.01f), B.assign(biggest, 0.01f), C.assign(biggest, 0.0f);
    for (const auto& s : shapes) {
        const int lda = s.ta == CblasNoTrans ? s.k : s.m, ldb = s.tb == CblasNoTrans ? s.n : s.k;
        gemm(s.ta == CblasTrans, s.tb == CblasTrans, s.m, s.n, s.k, 1.0f, A.data(), lda, B.data(), ldb, s.beta,
             C.data(), s.n);
    }
}

}  // namespace
