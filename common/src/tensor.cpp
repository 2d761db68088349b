#include "ane/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include "ane/error.hpp"

namespace ane {

std::int64_t shape_numel(const Shape& shape) {
    std::int64_t n = 1;
    for (auto d : shape) {
        require(d >= 0, "negative dimension in shape ", shape_string(shape));
        n *= d;
    }
    return n;
}

std::string shape_string(const Shape& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

void Tensor::FreeDeleter::operator()(float* p) const { std::free(p); }

Tensor::Tensor(Shape shape) : shape_(std::move(shape)), numel_(shape_numel(shape_)) {
    if (numel_ == 0) return;
    std::size_t bytes = (static_cast<std::size_t>(numel_) * sizeof(float) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    data_.reset(static_cast<float*>(p));
}

Tensor::Tensor(const Tensor& other) {
    if (other.numel_ == 0) {
        shape_ = other.shape_;
        return;
    }
    Tensor copy(other.shape_);
    std::memcpy(copy.data_.get(), other.data_.get(), other.bytes());
    *this = std::move(copy);
}

Tensor& Tensor::operator=(const Tensor& other) {
    if (this != &other) {
        Tensor copy(other);
        *this = std::move(copy);
    }
    return *this;
}

void Tensor::fill(float value) {
    for (std::int64_t i = 0; i < numel_; ++i) data_[i] = value;
}

void Tensor::zero() {
    if (numel_ > 0) std::memset(data_.get(), 0, bytes());
}

bool Tensor::bit_equal(const Tensor& other) const {
    return shape_ == other.shape_ && (numel_ == 0 || std::memcmp(data_.get(), other.data_.get(), bytes()) == 0);
}

}  // namespace ane
