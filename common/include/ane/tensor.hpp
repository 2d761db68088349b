#pragma once
// An owning, 64-byte-aligned float32 buffer with a row-major shape.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ane {

using Shape = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& shape);
std::string shape_string(const Shape& shape);  // "[64, 512]"

class Tensor {
public:
    Tensor() = default;
    explicit Tensor(Shape shape);  // zero-filled
    Tensor(const Tensor& other);
    Tensor& operator=(const Tensor& other);
    Tensor(Tensor&&) noexcept = default;
    Tensor& operator=(Tensor&&) noexcept = default;

    const Shape& shape() const { return shape_; }
    std::int64_t numel() const { return numel_; }
    std::size_t bytes() const { return static_cast<std::size_t>(numel_) * sizeof(float); }
    bool empty() const { return numel_ == 0; }
    std::int64_t rows() const { return shape_.empty() ? 0 : shape_[0]; }
    std::int64_t cols() const { return shape_.size() < 2 ? 1 : numel_ / shape_[0]; }

    float* data() { return data_.get(); }
    const float* data() const { return data_.get(); }
    std::span<float> span() { return {data_.get(), static_cast<std::size_t>(numel_)}; }
    std::span<const float> span() const { return {data_.get(), static_cast<std::size_t>(numel_)}; }
    float* row(std::int64_t r) { return data_.get() + r * cols(); }
    const float* row(std::int64_t r) const { return data_.get() + r * cols(); }
    float& operator[](std::int64_t i) { return data_[i]; }
    float operator[](std::int64_t i) const { return data_[i]; }

    void fill(float value);
    void zero();
    bool bit_equal(const Tensor& other) const;

private:
    struct FreeDeleter {
        void operator()(float* p) const;
    };
    Shape shape_;
    std::int64_t numel_ = 0;
    std::unique_ptr<float[], FreeDeleter> data_;
};

}  // namespace ane
